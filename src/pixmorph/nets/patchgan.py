"""PatchGAN discriminators: a grid of real/fake logits, one per image patch."""

from __future__ import annotations

from torch import Tensor, nn

from pixmorph.nets.blocks import conv_bias, norm_layer


class PatchDiscriminator(nn.Module):
    """C64-C128-...-1 PatchGAN; n_layers=3 sees 70x70 patches."""

    def __init__(
        self, in_ch: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"PatchDiscriminator needs n_layers >= 1, got {n_layers}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last feature layer keeps the resolution
            layers += [
                nn.Conv2d(width, next_width, 4, stride, 1, bias=bias),
                norm_layer(norm, next_width),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = next_width
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # (B, 1, h, w) logits


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: classifies every pixel on its own (colour statistics only)."""

    def __init__(self, in_ch: int = 6, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=conv_bias(norm)),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # (B, 1, H, W) logits
