"""Training-time preprocessing of (C, H, W) tensors: resize, crop, flip and turn, drawn once per
sample.

Tensors, not Pillow images, so 16-bit and N-channel data keep their precision and channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from pixmorph.errors import DataError


@dataclass(frozen=True)
class Augment:
    """One draw of the random choices for a sample, shared by its A and B images."""

    crop_x: float  # position of the crop within the free margin, in [0, 1]
    crop_y: float
    flip: bool  # mirrored left to right
    turns: int = 0  # then turned by this many quarter turns (0-3), anticlockwise


def draw_augment(rng: np.random.Generator, flip: bool, rotate: bool = False) -> Augment:
    """Draw crop position, flip and (with `rotate`) quarter turns for one sample.

    Flip and turns together give each of the eight orientations of a square with equal chance.
    """
    x, y, mirrored = float(rng.random()), float(rng.random()), bool(flip and rng.random() < 0.5)
    return Augment(x, y, mirrored, int(rng.integers(4)) if rotate else 0)


def orient(x: Tensor, aug: Augment) -> Tensor:
    """Flip and turn (..., H, W) as `aug` says."""
    if aug.flip:
        x = x.flip(-1)
    return x.rot90(aug.turns, (-2, -1)) if aug.turns else x


def upright(x: Tensor, aug: Augment) -> Tensor:
    """Undo orient: turn (..., H, W) back, then mirror it back."""
    x = x.rot90(-aug.turns, (-2, -1)) if aug.turns else x
    return x.flip(-1) if aug.flip else x


CENTRE = Augment(0.5, 0.5, False)  # deterministic choice for evaluation


def _resize(x: Tensor, w: int, h: int) -> Tensor:
    if tuple(x.shape[1:]) == (h, w):
        return x
    # bicubic with antialiasing, like Pillow's resize; the clamp drops the kernel's overshoot
    y = F.interpolate(x[None], size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return y[0].clamp(-1.0, 1.0)


def _crop(x: Tensor, size: int, aug: Augment, name: str) -> Tensor:
    h, w = x.shape[1:]
    if w < size or h < size:
        raise DataError(
            f"{name}: image is {w}x{h}, smaller than the crop size {size}; "
            "lower data.crop_size (--size) or use preprocess=resize_and_crop"
        )
    x0 = round(aug.crop_x * (w - size))
    y0 = round(aug.crop_y * (h - size))
    return x[:, y0 : y0 + size, x0 : x0 + size]


def preprocess(
    x: Tensor, mode: str, load_size: int, crop_size: int, aug: Augment, name: str = "image"
) -> Tensor:
    """Apply the named preprocessing with the given random draw to (C, H, W) in [-1, 1]."""
    if mode == "resize_and_crop":
        x = _crop(_resize(x, load_size, load_size), crop_size, aug, name)
    elif mode == "crop":
        x = _crop(x, crop_size, aug, name)
    elif mode == "scale_width":
        h, w = x.shape[1:]
        x = _resize(x, load_size, max(crop_size, round(h * load_size / w)))
    elif mode == "scale_width_and_crop":
        h, w = x.shape[1:]
        x = _resize(x, load_size, max(crop_size, round(h * load_size / w)))
        x = _crop(x, crop_size, aug, name)
    elif mode != "none":
        raise DataError(f"unknown preprocess mode {mode!r}")
    return orient(x, aug).contiguous()
