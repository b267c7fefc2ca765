"""SRResNet: the residual super-resolution generator of SRGAN (Ledig et al., CVPR 2017)."""

from __future__ import annotations

import math

from torch import Tensor, nn

# Sub-pixel stages per scale: x2, x4, x8 chain PixelShuffle(2); x3 is one PixelShuffle(3).
SCALES = (2, 3, 4, 8)


class SRResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN with an identity skip."""

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        # No conv bias before BN: BN subtracts the batch mean, so a bias would be dead weight.
        self.body = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1, bias=False),
            nn.BatchNorm2d(n_feats),
            nn.PReLU(),
            nn.Conv2d(n_feats, n_feats, 3, padding=1, bias=False),
            nn.BatchNorm2d(n_feats),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)  # (B, F, H, W)


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
    ) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_ch, n_feats, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(
            *(SRResidualBlock(n_feats) for _ in range(n_blocks)),
            nn.Conv2d(n_feats, n_feats, 3, padding=1, bias=False),
            nn.BatchNorm2d(n_feats),
        )
        self.upsample = upsampler(n_feats, scale)
        self.tail = nn.Conv2d(n_feats, out_ch, 9, padding=4)

    def forward(self, x: Tensor) -> Tensor:
        feats = self.head(x)  # (B, F, H, W)
        feats = feats + self.body(feats)  # long skip over all residual blocks
        return self.tail(self.upsample(feats))  # (B, out_ch, H*scale, W*scale)
