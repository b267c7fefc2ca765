"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al. 2020).

On small datasets D memorises the real images; transforming real and fake images alike before
D, differentiably so G still gets gradients, keeps it from doing so. One random draw is applied
to every batch passed together, so real and fake images see the same transforms. Images are in
[-1, 1]; the ranges are the paper's: brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5],
translation up to 1/8 of the size (zero fill), a cutout of half the size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from pixmorph.errors import ConfigError

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def parse_policy(text: str, option: str = "model.diffaugment") -> tuple[str, ...]:
    """`"color,translation"` -> ("color", "translation"); "" -> () (no augmentation)."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in POLICIES]
    if bad:
        raise ConfigError(
            f"{option}={text!r}: unknown transform {bad[0]!r}; give a comma-separated list of "
            f"{', '.join(POLICIES)} (or an empty string for none)"
        )
    return parts


@dataclass
class Draw:
    """One random draw of every transform of a policy, for a batch of B images of H x W."""

    brightness: Tensor | None = None  # (B, 1, 1, 1) added
    saturation: Tensor | None = None  # (B, 1, 1, 1) factor on the distance to the grey level
    contrast: Tensor | None = None  # (B, 1, 1, 1) factor on the distance to the mean
    shift: Tensor | None = None  # (B, 2) integer (dy, dx)
    keep: Tensor | None = None  # (B, 1, H, W) 0 inside the cutout, 1 elsewhere


def draw(
    policy: Sequence[str],
    batch: int,
    height: int,
    width: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Draw:
    """Random parameters of each transform in `policy` (from the global RNG unless `generator`)."""

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    d = Draw()
    if "color" in policy:
        d.brightness = uniform(batch, 1, 1, 1) - 0.5
        d.saturation = uniform(batch, 1, 1, 1) * 2.0
        d.contrast = uniform(batch, 1, 1, 1) + 0.5
    if "translation" in policy:
        limit = torch.tensor([int(height * TRANSLATION_RATIO), int(width * TRANSLATION_RATIO)])
        d.shift = (torch.rand(batch, 2, generator=generator) * (2 * limit + 1)).floor() - limit
        d.shift = d.shift.long().to(device)
    if "cutout" in policy:
        ch, cw = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
        # the cutout's top-left corner; it may hang over any edge by up to half its size
        y0 = (torch.rand(batch, generator=generator) * (height + 1 - ch % 2)).long() - ch // 2
        x0 = (torch.rand(batch, generator=generator) * (width + 1 - cw % 2)).long() - cw // 2
        ys, xs = torch.arange(height), torch.arange(width)
        in_y = (ys[None] >= y0[:, None]) & (ys[None] < y0[:, None] + ch)  # (B, H)
        in_x = (xs[None] >= x0[:, None]) & (xs[None] < x0[:, None] + cw)  # (B, W)
        d.keep = (~(in_y[:, :, None] & in_x[:, None, :])).float()[:, None].to(device)
    return d


def _colour(x: Tensor, d: Draw) -> Tensor:
    """Brightness, saturation and contrast of one group of channels (one image's)."""
    if d.brightness is not None:
        x = x + d.brightness.to(x.dtype)
    if d.saturation is not None:
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * d.saturation.to(x.dtype) + grey
    if d.contrast is not None:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * d.contrast.to(x.dtype) + mean
    return x


def _translate(x: Tensor, shift: Tensor) -> Tensor:
    """Shift each image by its (dy, dx) pixels, filling with zeros (differentiable in x)."""
    b, _, h, w = x.shape
    pad_y, pad_x = int(shift[:, 0].abs().max()), int(shift[:, 1].abs().max())
    padded = torch.nn.functional.pad(x, (pad_x, pad_x, pad_y, pad_y))  # (B, C, H+2py, W+2px)
    iy = torch.arange(h, device=x.device)[None] + pad_y - shift[:, :1]  # (B, H)
    ix = torch.arange(w, device=x.device)[None] + pad_x - shift[:, 1:]  # (B, W)
    rows = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[rows, iy[:, :, None], ix[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def apply(x: Tensor, d: Draw, groups: Sequence[int] | None = None) -> Tensor:
    """Transform a batch (B, C, H, W) with a draw.

    `groups` splits the channels into images stacked together (pix2pix's D sees (input, output)
    pairs: groups=(in_channels, out_channels)); the colour transforms measure each on its own.
    """
    if d.brightness is not None or d.saturation is not None or d.contrast is not None:
        sizes = list(groups) if groups else [x.shape[1]]
        if sum(sizes) != x.shape[1]:
            raise ValueError(f"channel groups {sizes} do not add up to {x.shape[1]} channels")
        x = torch.cat([_colour(part, d) for part in x.split(sizes, dim=1)], dim=1)
    if d.shift is not None:
        x = _translate(x, d.shift)
    if d.keep is not None:
        x = x * d.keep.to(x.dtype)
    return x


def diff_augment(
    *xs: Tensor, policy: Sequence[str], groups: Sequence[int] | None = None
) -> tuple[Tensor, ...]:
    """The same random transforms applied to every batch given (e.g. real and fake)."""
    if not policy:
        return xs
    b, _, h, w = xs[0].shape
    d = draw(policy, b, h, w, xs[0].device)
    return tuple(apply(x, d, groups) for x in xs)
