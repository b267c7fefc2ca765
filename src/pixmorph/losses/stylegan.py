"""StyleGAN2's objectives: non-saturating logistic loss, lazy R1, path-length regularization."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def g_nonsat(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: softplus(-D(G(z))), i.e. -log sigmoid of the fake logits."""
    return F.softplus(-fake_logits.float()).mean()


def d_logistic(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Logistic discriminator loss: softplus(D(fake)) + softplus(-D(real))."""
    return F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()


def r1_penalty(d: Callable[[Tensor], Tensor], reals: Tensor) -> Tensor:
    """R1: the mean over the batch of ||grad_x D(x)||^2 at the real images (unscaled).

    The loss is r1_weight(gamma, interval) * r1_penalty: gamma / 2, times the lazy interval
    when the penalty is computed only every `interval` D steps.
    """
    reals = reals.detach().requires_grad_(True)
    logits = d(reals)
    (grad,) = torch.autograd.grad(logits.float().sum(), reals, create_graph=True)
    return grad.float().square().flatten(1).sum(dim=1).mean()


def r1_weight(gamma: float = 10.0, interval: int = 16) -> float:
    """The factor on r1_penalty: gamma / 2, scaled by the lazy interval so its average is kept."""
    return gamma / 2.0 * interval


def lazy_adam(
    lr: float, betas: tuple[float, float], interval: int
) -> tuple[float, tuple[float, float]]:
    """Adam settings for a network with a lazy regularizer every `interval` steps.

    The regularizer steps are extra optimizer steps, so lr and betas shrink by c = k / (k + 1)
    to keep the same effective schedule per main step (StyleGAN2, Appendix B).
    """
    if interval <= 0:
        return lr, betas
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


class PathLengthRegularizer(nn.Module):
    """Path-length regularization: keeps |J_w^T y| near its running mean a for random images y.

    The running mean lives in a buffer (`mean`), so it is saved and restored with the module.
    The loss is `weight * interval * penalty`; the caller runs it every `interval` G steps.
    """

    def __init__(self, weight: float = 2.0, interval: int = 4, decay: float = 0.01) -> None:
        super().__init__()
        self.weight, self.interval, self.decay = weight, interval, decay
        self.register_buffer("mean", torch.zeros(()))

    def forward(self, images: Tensor, ws: Tensor) -> Tensor:
        """Penalty (lengths - a)^2 for images (B, C, H, W) generated from ws (B, num_ws, w_dim)."""
        h, w = images.shape[-2:]
        # y ~ N(0, I) / sqrt(H W): the length is then independent of the image size
        y = torch.randn_like(images) / math.sqrt(h * w)
        (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()  # (B,)
        with torch.no_grad():
            self.mean.lerp_(lengths.mean(), self.decay)
        return (lengths - self.mean).square().mean()

    def loss(self, images: Tensor, ws: Tensor) -> Tensor:
        """The weighted lazy loss: weight * interval * penalty."""
        return self.weight * self.interval * self(images, ws)
