"""Training-time preprocessing: resize, crop and flip, drawn once and applied to both images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixmorph.data.images import DataError


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


def _resize(img: Image.Image, w: int, h: int) -> Image.Image:
    return img if img.size == (w, h) else img.resize((w, h), Image.BICUBIC)


def _crop(img: Image.Image, size: int, aug: Augment, name: str) -> Image.Image:
    w, h = img.size
    if w < size or h < size:
        raise DataError(
            f"{name}: image is {w}x{h}, smaller than the crop size {size}; "
            "lower data.crop_size (--size) or use preprocess=resize_and_crop"
        )
    x = round(aug.crop_x * (w - size))
    y = round(aug.crop_y * (h - size))
    return img.crop((x, y, x + size, y + size))


def preprocess(
    img: Image.Image, mode: str, load_size: int, crop_size: int, aug: Augment, name: str = "image"
) -> Image.Image:
    """Apply the named preprocessing with the given random draw."""
    if mode == "resize_and_crop":
        img = _crop(_resize(img, load_size, load_size), crop_size, aug, name)
    elif mode == "crop":
        img = _crop(img, crop_size, aug, name)
    elif mode == "scale_width":
        w, h = img.size
        img = _resize(img, load_size, max(crop_size, round(h * load_size / w)))
    elif mode == "scale_width_and_crop":
        w, h = img.size
        img = _resize(img, load_size, max(crop_size, round(h * load_size / w)))
        img = _crop(img, crop_size, aug, name)
    elif mode != "none":
        raise DataError(f"unknown preprocess mode {mode!r}")
    if aug.flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img
