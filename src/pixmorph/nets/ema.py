"""An exponential moving average of a network's weights (StyleGAN's G_ema; any method may use it)."""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(
    batch_size: int,
    half_life_images: float = 10_000.0,
    images_seen: int | None = None,
    rampup: float | None = None,
) -> float:
    """Per-step decay so that the weight of an update halves every `half_life_images` images.

    With `rampup`, the half-life is capped at rampup * images_seen, so early on the average
    follows the fast-changing network instead of its random start.
    """
    if batch_size <= 0 or half_life_images <= 0:
        raise ValueError(
            f"ema_beta needs batch_size > 0 and half_life_images > 0, "
            f"got {batch_size!r} and {half_life_images!r}"
        )
    if rampup is not None and images_seen is not None:
        half_life_images = min(half_life_images, max(images_seen * rampup, 1e-8))
    return 0.5 ** (batch_size / half_life_images)


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * net for parameters; buffers are copied as they are."""
    ema_params = dict(ema.named_parameters())
    for name, p in net.named_parameters():
        ema_params[name].lerp_(p.detach().to(ema_params[name].dtype), 1.0 - beta)
    ema_buffers = dict(ema.named_buffers())
    for name, b in net.named_buffers():
        ema_buffers[name].copy_(b)
