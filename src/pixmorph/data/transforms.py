"""Training-time preprocessing of (C, H, W) tensors: resize, crop and flip, drawn once per sample.

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
    flip: bool


def draw_augment(rng: np.random.Generator, flip: bool) -> Augment:
    """Draw crop position and flip for one sample."""
    return Augment(float(rng.random()), float(rng.random()), bool(flip and rng.random() < 0.5))


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
    if aug.flip:
        x = x.flip(-1)
    return x.contiguous()
