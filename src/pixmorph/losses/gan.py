"""GAN objectives and the gradient penalty."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GANMode = Literal["vanilla", "lsgan", "hinge", "wgangp"]
GAN_MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge", "wgangp")


def d_loss(mode: str, pred: Tensor, real: bool) -> Tensor:
    """The discriminator's loss on logits `pred` for a batch of real (or fake) images."""
    pred = pred.float()  # losses in fp32 even under autocast
    if mode == "vanilla":
        target = torch.ones_like(pred) if real else torch.zeros_like(pred)
        return F.binary_cross_entropy_with_logits(pred, target)
    if mode == "lsgan":
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
    if mode == "hinge":
        return F.relu(1.0 - pred).mean() if real else F.relu(1.0 + pred).mean()
    if mode == "wgangp":
        return -pred.mean() if real else pred.mean()
    raise ValueError(f"unknown GAN loss {mode!r}; choose one of {', '.join(GAN_MODES)}")


def g_loss(mode: str, pred: Tensor) -> Tensor:
    """The generator's adversarial loss on the discriminator's logits for its fakes."""
    pred = pred.float()
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
    if mode == "lsgan":
        return F.mse_loss(pred, torch.ones_like(pred))
    if mode in ("hinge", "wgangp"):
        return -pred.mean()
    raise ValueError(f"unknown GAN loss {mode!r}; choose one of {', '.join(GAN_MODES)}")


def gradient_penalty(
    disc: nn.Module, real: Tensor, fake: Tensor, target_norm: float = 1.0
) -> Tensor:
    """WGAN-GP penalty: (||grad D(x_hat)|| - 1)^2 at random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = disc(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).float().norm(2, dim=1)
    return ((norms - target_norm) ** 2).mean()
