"""StyleGAN2's residual discriminator: fromRGB, residual blocks halving the size, mbstd at 4x4."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.nets.stylegan import channels_at, check_size
from pixmorph.nets.stylegan_layers import EqualConv2d, EqualLinear, blur, lrelu


def minibatch_stddev(x: Tensor, group: int = 4, features: int = 1) -> Tensor:
    """Append the std of features across groups of samples: D sees how varied a batch is."""
    b, c, h, w = x.shape
    g = min(group, b)
    while b % g:  # a batch that does not split into groups of `group` uses the largest that does
        g -= 1
    if c % features:
        raise ValueError(f"mbstd features ({features}) must divide the channels ({c})")
    # statistics in at least fp32 (a half-precision variance of near-equal samples is noise)
    y = x.to(torch.promote_types(x.dtype, torch.float32))
    y = y.reshape(g, -1, features, c // features, h, w)  # (G, M, F, c/F, H, W)
    y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over each group: (M, F, c/F, H, W)
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (M, F)
    y = y.to(x.dtype).reshape(-1, features, 1, 1).repeat(g, 1, h, w)  # (B, F, H, W)
    return torch.cat([x, y], dim=1)  # (B, C + F, H, W)


def downsample2x(x: Tensor) -> Tensor:
    """Halve the size by 2x2 averaging (bilinear x0.5): the lower resolution's input image."""
    return F.avg_pool2d(x, 2)


class FromRGB(nn.Module):
    """A 1x1 conv from image channels to features, LeakyReLU."""

    def __init__(self, img_channels: int, out_ch: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(img_channels, out_ch, 1)

    def forward(self, img: Tensor) -> Tensor:
        return lrelu(self.conv(img))  # (B, out, H, W)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs (the second strided, after a blur) plus a 1x1 strided skip, both halving H, W."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3, padding=1)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, stride=2)
        self.skip = EqualConv2d(in_ch, out_ch, 1, stride=2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # The [1, 3, 3, 1] blur before each stride-2 conv anti-aliases the subsampling; the pads
        # make both paths land on exactly H/2.
        skip = self.skip(blur(x, (1, 1)))  # (B, out, H/2, W/2)
        x = lrelu(self.conv0(x))
        x = lrelu(self.conv1(blur(x, (2, 2))))  # (B, out, H/2, W/2)
        return (x + skip) / math.sqrt(2.0)  # keeps the variance of the sum of two paths


class StyleDiscriminator(nn.Module):
    """Scores images (B, img_channels, size, size) as real or fake: (B, 1) logits."""

    def __init__(
        self,
        size: int,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        mbstd_group: int = 4,
        mbstd_features: int = 1,
        progressive: bool = False,
    ) -> None:
        super().__init__()
        log = check_size(size)
        self.size = size
        self.mbstd_group, self.mbstd_features = mbstd_group, mbstd_features
        self.progressive = progressive
        self.resolutions = [2**i for i in range(log, 1, -1)]  # size, size/2, ..., 4
        ch = {r: channels_at(r, channel_base, channel_max) for r in self.resolutions}
        # Progressive growing needs a fromRGB at every resolution an image may enter at.
        rgb_res = self.resolutions if progressive else [size]
        self.from_rgb = nn.ModuleDict({str(r): FromRGB(img_channels, ch[r]) for r in rgb_res})
        self.blocks = nn.ModuleDict(
            {str(r): DiscriminatorBlock(ch[r], ch[r // 2]) for r in self.resolutions[:-1]}
        )
        c4 = ch[4]
        self.conv = EqualConv2d(c4 + mbstd_features, c4, 3, padding=1)
        self.fc = EqualLinear(c4 * 4 * 4, c4, activation=True)
        self.out = EqualLinear(c4, 1)

    def forward(self, img: Tensor, resolution: int | None = None, alpha: float = 1.0) -> Tensor:
        """Logits (B, 1); a progressive D takes images at `resolution`, the newest faded by alpha."""
        res = self.size if resolution is None else resolution
        if str(res) not in self.from_rgb:
            known = ", ".join(self.from_rgb.keys())
            raise ValueError(f"StyleDiscriminator resolution {res!r} has no fromRGB; use {known}")
        if img.shape[-2:] != (res, res):
            raise ValueError(
                f"StyleDiscriminator expects {res}x{res} images, got {tuple(img.shape)}"
            )
        x = self.from_rgb[str(res)](img)  # (B, C(res), res, res)
        if res > 4:
            x = self.blocks[str(res)](x)
            if alpha < 1.0:
                # fading in: blend with the image entering one resolution lower
                low = self.from_rgb[str(res // 2)](downsample2x(img))
                x = low.lerp(x, alpha)
        for r in self.resolutions[:-1]:
            if r < res:
                x = self.blocks[str(r)](x)
        x = minibatch_stddev(x, self.mbstd_group, self.mbstd_features)  # (B, C4 + F, 4, 4)
        x = lrelu(self.conv(x))
        return self.out(self.fc(x.flatten(1)))  # (B, 1)
