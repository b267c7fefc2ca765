"""ResNet generator of CycleGAN: downsample twice, residual blocks, upsample twice."""

from __future__ import annotations

from torch import Tensor, nn

from pixmorph.nets.blocks import conv_bias, norm_layer


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convs with a skip connection."""

    def __init__(self, channels: int, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """7x7 stem, two stride-2 convs, `n_blocks` residual blocks, two transposed convs, tanh."""

    size_multiple = 4
    # measured: torch.compile fuses its many norm, padding and activation steps (+10-15 % on a
    # CycleGAN step at 128x128, docs/speed.md); on U-Nets it gained nothing
    compile_pays = True

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, 7, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(inplace=True),
        )
        down: list[nn.Module] = []
        for mult in (1, 2):
            down += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias),
                norm_layer(norm, ngf * mult * 2),
                nn.ReLU(inplace=True),
            ]
        self.down = nn.Sequential(*down)
        self.blocks = nn.Sequential(
            *[ResidualBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        )
        up: list[nn.Module] = []
        for mult in (4, 2):
            up += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias
                ),
                norm_layer(norm, ngf * mult // 2),
                nn.ReLU(inplace=True),
            ]
        self.up = nn.Sequential(*up)
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))  # (B, out_ch, H, W)
