"""Paired data: each file holds A and B side by side (A on the left)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from torch import Tensor

from pixmorph.data.base import ImageFiles, KeyedDataset
from pixmorph.data.images import DataError, list_images, to_tensor
from pixmorph.data.transforms import CENTRE, draw_augment, preprocess


def split_pair(img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Cut an A|B image into its left (A) and right (B) halves."""
    w, h = img.size
    half = w // 2
    return img.crop((0, 0, half, h)), img.crop((half, 0, w, h))


def check_aligned(path: Path, img: Image.Image) -> None:
    """An aligned file must be exactly twice as wide as it is high."""
    w, h = img.size
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
        channels = 4 if max(in_channels, out_channels) == 4 else 3
        self.images = ImageFiles(files, channels, check_aligned, verify, skip_bad, cache)
        self.direction = direction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mode, self.load_size, self.crop_size = preprocess_mode, load_size, crop_size
        self.flip, self.train, self.seed = flip, train, seed

    def __len__(self) -> int:
        return len(self.images)

    def _half(self, img: Image.Image, channels: int, aug, name: str) -> Tensor:
        img = preprocess(img, self.mode, self.load_size, self.crop_size, aug, name)
        if channels == 1:
            img = img.convert("L")
        elif channels == 3 and img.mode != "RGB":
            img = img.convert("RGB")
        return to_tensor(img)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images)
        path = self.images.files[i]
        left, right = split_pair(self.images.load(i))
        a, b = (left, right) if self.direction == "AtoB" else (right, left)
        aug = draw_augment(self.rng(key), self.flip) if self.train else CENTRE
        return {
            "a": self._half(a, self.in_channels, aug, str(path)),
            "b": self._half(b, self.out_channels, aug, str(path)),
            "path": str(path),
        }
