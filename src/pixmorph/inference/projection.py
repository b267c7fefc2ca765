"""Projection: find the w (or w+) whose image reproduces a real photo, so it can be mixed and edited.

The loss is pixel MSE at full size plus MSE at half and quarter size (the coarse terms pull
shape and colour into place before detail). No perceptual network is used: pixmorph downloads
nothing, and the inference build of a checkpoint has no discriminator. Noise stays fixed (the
generator's constant noise), so the latent alone reproduces the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.errors import ConfigError
from pixmorph.inference.generation import LoadedSampler

LATENT_FORMAT = "pixmorph-latent"


def reconstruction_loss(img: Tensor, target: Tensor) -> Tensor:
    """Pixel MSE at full, 1/2 and 1/4 size (sizes too small to halve are skipped)."""
    loss = F.mse_loss(img, target)
    for factor in (2, 4):
        if img.shape[-1] // factor >= 4:
            loss = loss + F.mse_loss(F.avg_pool2d(img, factor), F.avg_pool2d(target, factor))
    return loss


@dataclass
class Projection:
    """The latent found for a target image, its image and the loss along the way."""

    ws: Tensor  # (1, num_ws, w_dim)
    image: Tensor  # (1, C, H, W) in [-1, 1]
    losses: list[float]  # reconstruction_loss at every step (before its update)
    w_plus: bool

    def save(self, path: str | Path, checkpoint: str = "", step: int = 0) -> Path:
        """A .pt of tensors and plain values, loadable with torch.load(weights_only=True)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": LATENT_FORMAT,
                "ws": self.ws.detach().cpu(),
                "w_plus": self.w_plus,
                "checkpoint": checkpoint,
                "step": step,
                "final_loss": self.losses[-1] if self.losses else math.nan,
            },
            p,
        )
        return p


def project(
    m: LoadedSampler,
    target: Tensor,
    steps: int = 300,
    w_plus: bool = False,
    lr: float = 0.05,
    init_noise: float = 0.05,
    seed: int = 0,
) -> Projection:
    """Optimize w (one per image) or w+ (one per layer) to reproduce target (1, C, H, W) in [-1, 1].

    Starts at w_avg (the mean image), jittered by `init_noise` times the spread of w so the
    first steps explore; Adam with a cosine-decaying learning rate.
    """
    m.require_latents("projection")
    module: Any = m.module
    size, ch = m.sampler.size, m.sampler.out_channels
    if target.dim() != 4 or target.shape[0] != 1 or tuple(target.shape[1:]) != (ch, size, size):
        raise ConfigError(
            f"projection target must be (1, {ch}, {size}, {size}), got {tuple(target.shape)}"
        )
    if steps < 1:
        raise ConfigError(f"--steps {steps}: project for at least one step")
    dev = m.device
    target = target.to(dev).float()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        probe = torch.randn(256, m.sampler.latent_dim, generator=gen).to(dev)
        w_probe = module.mapping(probe)[:, 0]  # (256, w_dim)
        spread = (w_probe - module.w_avg).square().sum(dim=1).mean().sqrt()
        start = module.w_avg.detach().clone()[None, None]  # (1, 1, w_dim)
        start = start + init_noise * spread * torch.randn(start.shape, generator=gen).to(dev)
    layers = module.num_ws if w_plus else 1
    w = start.repeat(1, layers, 1).requires_grad_(True)  # (1, layers, w_dim)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses = []
    was = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)  # gradients reach w only
    try:
        for _ in range(steps):
            ws = w if w_plus else w.expand(-1, module.num_ws, -1)
            loss = reconstruction_loss(module.synthesis(ws), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    finally:
        for p, flag in zip(module.parameters(), was, strict=True):
            p.requires_grad_(flag)
    with torch.no_grad():
        ws = (w if w_plus else w.expand(-1, module.num_ws, -1)).detach().clone()
        image = module.synthesis(ws).float().clamp(-1, 1).cpu()
    return Projection(ws.cpu(), image, losses, w_plus)
