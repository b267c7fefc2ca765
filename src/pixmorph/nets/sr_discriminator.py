"""The SRGAN discriminator (Ledig et al., CVPR 2017): a VGG-style conv stack and a dense head."""

from __future__ import annotations

from torch import Tensor, nn


class SRDiscriminator(nn.Module):
    """Scores a (B, in_ch, H, W) image in [-1, 1] as real or fake: (B, 1) logits, no sigmoid."""

    # The dense head is sized for `input_size` crops (96 in the paper): four stride-2 convs leave
    # an (input_size / 16)^2 grid. An AdaptiveAvgPool2d to that grid lets other crop sizes through;
    # it is the identity at `input_size` and elsewhere averages (for smaller crops, repeats)
    # features, so scores are best compared at the crop size the discriminator was trained on.
    # Logits pair with BCEWithLogitsLoss or any logit-based GAN loss.

    def __init__(self, in_ch: int = 3, n_feats: int = 64, input_size: int = 96) -> None:
        super().__init__()
        if input_size < 16 or input_size % 16:
            raise ValueError(
                f"SRDiscriminator input_size must be a positive multiple of 16 (four stride-2 "
                f"convs), got {input_size!r}; use e.g. 96 or 128"
            )
        widths = [n_feats, n_feats, 2 * n_feats, 2 * n_feats, 4 * n_feats, 4 * n_feats]
        widths += [8 * n_feats, 8 * n_feats]
        layers: list[nn.Module] = [nn.Conv2d(in_ch, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for i in range(1, len(widths)):
            stride = 2 if i % 2 else 1  # the 2nd, 4th, 6th and 8th conv halve the size
            layers += [
                # No conv bias before BN: BN's mean subtraction would cancel it.
                nn.Conv2d(widths[i - 1], widths[i], 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(widths[i]),
                nn.LeakyReLU(0.2),
            ]
        self.features = nn.Sequential(*layers)
        grid = input_size // 16
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * grid * grid, 1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        feats = self.features(x)  # (B, 8F, ceil(H/16), ceil(W/16))
        return self.head(self.pool(feats))  # (B, 1)
