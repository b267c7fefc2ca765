"""SRResNet: the residual super-resolution generator of SRGAN (Ledig et al., CVPR 2017)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

# Sub-pixel stages per scale: x2, x4, x8 chain PixelShuffle(2); x3 is one PixelShuffle(3).
SCALES = (2, 3, 4, 8)
# "stages": the published conv+PixelShuffle(2) stages and 9x9 tail; "direct": one conv at the LR
# size to out_ch*scale^2 channels and one PixelShuffle(scale), as lightweight SR nets do
UPSAMPLERS = ("stages", "direct")


def conv_norm(n_feats: int, batch_norm: bool) -> list[nn.Module]:
    """A 3x3 conv, followed by batch norm when asked (then without a bias: BN removes it)."""
    conv = nn.Conv2d(n_feats, n_feats, 3, padding=1, bias=not batch_norm)
    return [conv, nn.BatchNorm2d(n_feats)] if batch_norm else [conv]


class SRResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN with an identity skip (BN left out when `batch_norm` is off)."""

    def __init__(self, n_feats: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_norm(n_feats, batch_norm), nn.PReLU(), *conv_norm(n_feats, batch_norm)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)  # (B, F, H, W)


def direct_upsampler(n_feats: int, out_ch: int, scale: int) -> nn.Sequential:
    """One 3x3 conv to out_ch*scale^2 channels at the LR size, then one PixelShuffle(scale)."""
    if scale not in SCALES:
        raise ValueError(f"SRResNet scale must be one of {SCALES}, got {scale!r}")
    return nn.Sequential(
        nn.Conv2d(n_feats, out_ch * scale * scale, 3, padding=1),  # (B, out*s*s, H, W)
        nn.PixelShuffle(scale),  # (B, out_ch, H*s, W*s)
    )


def upsampler(n_feats: int, scale: int) -> nn.Sequential:
    """Sub-pixel convolution stages (conv, PixelShuffle, PReLU) that multiply H and W by `scale`."""
    if scale not in SCALES:
        raise ValueError(f"SRResNet scale must be one of {SCALES}, got {scale!r}")
    # x3 cannot be built from x2 stages, so it gets a single PixelShuffle(3) stage.
    factors = [3] if scale == 3 else [2] * int(math.log2(scale))
    layers: list[nn.Module] = []
    for r in factors:
        layers += [
            nn.Conv2d(n_feats, n_feats * r * r, 3, padding=1),  # (B, F*r*r, H, W)
            nn.PixelShuffle(r),  # (B, F, H*r, W*r)
            nn.PReLU(),
        ]
    return nn.Sequential(*layers)


class SRResNet(nn.Module):
    """SRGAN generator: (B, in_ch, H, W) in [-1, 1] -> (B, out_ch, scale*H, scale*W), no tanh."""

    # Values: input and target use pixmorph's [-1, 1]; the output is the last conv's linear
    # response, so it may overshoot [-1, 1] slightly and callers clamp when making an image.
    # Why no tanh: the paper's figure ends in a plain 9x9 conv, and a tanh saturates exactly where
    # an MSE-trained SR net must be precise (pure black or white pixels would need infinite
    # pre-activations), slowing MSE pre-training. PReLU has one slope per layer.

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        scale: int = 4,
        n_feats: int = 64,
        n_blocks: int = 16,
        *,
        batch_norm: bool = True,
        upsample: str = "stages",
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLERS:
            raise ValueError(f"SRResNet upsample must be one of {UPSAMPLERS}, got {upsample!r}")
        self.scale = scale
        self.bicubic_skip = bicubic_skip and in_ch == out_ch
        self.head = nn.Sequential(nn.Conv2d(in_ch, n_feats, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(
            *(SRResidualBlock(n_feats, batch_norm) for _ in range(n_blocks)),
            *conv_norm(n_feats, batch_norm),
        )
        if upsample == "stages":  # the published layout: x2 stages, then a 9x9 conv at HR size
            self.upsample = upsampler(n_feats, scale)
            self.tail: nn.Module = nn.Conv2d(n_feats, out_ch, 9, padding=4)
        else:  # every conv at the LR size: ~1/3 of the published x4 net's work at 16 blocks
            self.upsample = direct_upsampler(n_feats, out_ch, scale)
            self.tail = nn.Identity()
        if self.bicubic_skip:  # start as the bicubic upscale exactly: the residual grows from 0
            last = self.tail if isinstance(self.tail, nn.Conv2d) else self.upsample[0]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        feats = self.head(x)  # (B, F, H, W)
        feats = feats + self.body(feats)  # long skip over all residual blocks
        out = self.tail(self.upsample(feats))  # (B, out_ch, H*scale, W*scale)
        if self.bicubic_skip:  # the net learns the residual over a bicubic upscale
            h, w = x.shape[2:]
            size = (h * self.scale, w * self.scale)
            out = out + F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        return out
