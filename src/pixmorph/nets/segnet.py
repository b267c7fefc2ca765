"""A small encoder-decoder segmentation network: per-class logits at the input size."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 conv + batch norm + ReLU layers at one resolution."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class SegNet(nn.Module):
    """`depth` max-pool levels doubling the width, then nearest upsampling with skip concats."""

    def __init__(self, in_ch: int = 3, n_classes: int = 6, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        if depth < 1 or n_classes < 2:
            raise ValueError(
                f"SegNet needs depth >= 1 and n_classes >= 2, got {depth}, {n_classes}"
            )
        self.size_multiple = 2**depth
        widths = [width * 2**i for i in range(depth + 1)]  # one per resolution, finest first
        self.stem = _double_conv(in_ch, widths[0])
        self.downs = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(depth))
        # Skips keep the label edges sharp: the decoder sees the encoder's map at each level.
        self.ups = nn.ModuleList(
            _double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(
                f"SegNet of depth {len(self.downs)} takes sizes that are multiples of "
                f"{self.size_multiple}, got {h}x{w}; resize or crop the input"
            )
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(self.pool(skips[-1])))
        y = skips.pop()
        for up in self.ups:
            y = up(torch.cat([self.up(y), skips.pop()], 1))
        return self.head(y)  # (B, n_classes, H, W)
