"""U-Net generator of pix2pix: an encoder-decoder with skip connections at every level."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pixmorph.nets.blocks import conv_bias, norm_layer


def level_width(ngf: int, level: int) -> int:
    """Channels produced by encoder level `level` (64, 128, 256, 512, 512, ... for ngf=64)."""
    return ngf * min(2**level, 8)


class UNet(nn.Module):
    """U-Net with `depth` stride-2 levels; inputs must be a multiple of 2**depth in size."""

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        depth: int = 8,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"UNet depth must be at least 2, got {depth}")
        self.depth = depth
        bias = conv_bias(norm)
        widths = [level_width(ngf, i) for i in range(depth)]
        innermost = depth - 1

        downs: list[nn.Module] = [nn.Conv2d(in_ch, widths[0], 4, 2, 1, bias=bias)]
        for i in range(1, depth):
            layers: list[nn.Module] = [
                nn.LeakyReLU(0.2),
                nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=bias),
            ]
            if i != innermost:  # the bottleneck has no norm (it is 1x1 at the design size)
                layers.append(norm_layer(norm, widths[i]))
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)

        ups: list[nn.Module] = []
        for i in range(depth):
            if i == 0:
                ups.append(
                    nn.Sequential(
                        nn.ReLU(),
                        nn.ConvTranspose2d(2 * widths[0], out_ch, 4, 2, 1, bias=True),
                        nn.Tanh(),
                    )
                )
                continue
            in_width = widths[i] if i == innermost else 2 * widths[i]
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(in_width, widths[i - 1], 4, 2, 1, bias=bias),
                norm_layer(norm, widths[i - 1]),
            ]
            # dropout (the noise source of pix2pix) sits in the 512-wide levels above the bottleneck
            if dropout and 4 <= i < innermost:
                layers.append(nn.Dropout(0.5))
            ups.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList(ups)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.depth

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = x  # (B, in_ch, H, W)
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.ups[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            h = self.ups[i](torch.cat([skips[i], h], dim=1))
        return h  # (B, out_ch, H, W)
