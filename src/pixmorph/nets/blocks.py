"""Building blocks shared by the networks: normalisation choice and weight initialisation."""

from __future__ import annotations

from typing import Literal

from torch import nn

from pixmorph.nets.syncnorm import CrossRankBatchNorm2d

Norm = Literal["batch", "syncbatch", "instance", "none"]
NORMS: tuple[str, ...] = ("batch", "syncbatch", "instance", "none")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """A normalisation layer by name: batch (affine, running stats), instance (plain), none."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "syncbatch":  # plain batch norm until a data-parallel job shares its statistics
        return CrossRankBatchNorm2d(channels)
    if norm == "instance":
        # affine=False and no running statistics: the published pix2pix/CycleGAN setting
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by this norm needs its own bias (batch norm brings one)."""
    return norm not in ("batch", "syncbatch")


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights from N(0, gain) and batch-norm scales from N(1, gain)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
