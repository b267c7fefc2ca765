"""Paired data: each file holds A and B side by side (A on the left).

Any format images.py reads works, e.g. a 16-bit PNG or an (H, 2W, C) `.npy` array whose halves
share C channels (set data.in_channels = data.out_channels = C).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from pixmorph.data.base import ImageFiles, KeyedDataset
from pixmorph.data.images import check_channels, list_images, match_channels, to_tensor
from pixmorph.data.transforms import CENTRE, Augment, draw_augment, preprocess
from pixmorph.errors import DataError


def split_pair(img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Cut an A|B Pillow image into its left (A) and right (B) halves."""
    w, h = img.size
    half = w // 2
    return img.crop((0, 0, half, h)), img.crop((half, 0, w, h))


def split_halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """Cut an A|B tensor (C, H, 2W) into its left (A) and right (B) halves."""
    half = x.shape[2] // 2
    return x[:, :, :half], x[:, :, half:]


def check_aligned(path: Path, pixels: np.ndarray) -> None:
    """An aligned file must be exactly twice as wide as it is high."""
    h, w = pixels.shape[:2]
    if w != 2 * h:
        raise DataError(
            f"{path}: aligned images hold A and B side by side, so width must be 2x height; "
            f"this one is {w}x{h}"
        )


class AlignedDataset(KeyedDataset):
    """Yields {"a": input, "b": target, "path"} with `direction` applied (BtoA swaps halves)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        direction: str = "AtoB",
        in_channels: int = 3,
        out_channels: int = 3,
        preprocess_mode: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        train: bool = True,
        seed: int = 0,
        verify: bool = True,
        skip_bad: bool = False,
        cache: bool = False,
        max_images: int = 0,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DataError(f"direction must be AtoB or BtoA, got {direction!r}")
        files = list_images(folder)
        if max_images:
            files = files[:max_images]
        self.direction = direction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.images = ImageFiles(
            files, check=self._check, verify=verify, skip_bad=skip_bad, cache=cache
        )
        self.mode, self.load_size, self.crop_size = preprocess_mode, load_size, crop_size
        self.flip, self.train, self.seed = flip, train, seed

    def __len__(self) -> int:
        return len(self.images)

    def _check(self, path: Path, pixels: np.ndarray) -> None:
        check_aligned(path, pixels)
        c = pixels.shape[2]
        check_channels(path, c, self.in_channels, "data.in_channels")
        check_channels(path, c, self.out_channels, "data.out_channels")

    def _half(self, x: Tensor, channels: int, option: str, aug: Augment, name: str) -> Tensor:
        x = match_channels(x, channels, name, option)
        return preprocess(x, self.mode, self.load_size, self.crop_size, aug, name)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images)
        path = self.images.files[i]
        left, right = split_halves(to_tensor(self.images.load(i)))
        a, b = (left, right) if self.direction == "AtoB" else (right, left)
        aug = draw_augment(self.rng(key), self.flip) if self.train else CENTRE
        name = str(path)
        return {
            "a": self._half(a, self.in_channels, "data.in_channels", aug, name),
            "b": self._half(b, self.out_channels, "data.out_channels", aug, name),
            "path": str(path),
        }
