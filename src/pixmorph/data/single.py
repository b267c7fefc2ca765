"""A folder of single images (no pairs), e.g. colour photos for colorization."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from torch import Tensor

from pixmorph.data.base import ImageFiles, KeyedDataset
from pixmorph.data.images import (
    check_channels,
    is_greyscale,
    list_images,
    match_channels,
    to_tensor,
)
from pixmorph.data.transforms import CENTRE, draw_augment, preprocess

log = logging.getLogger(__name__)


class SingleDataset(KeyedDataset):
    """Yields {"image": (C, H, W) in [-1, 1], "path"}; `colour_only` leaves greyscale files out."""

    def __init__(
        self,
        folder: str | Path,
        *,
        channels: int = 3,
        colour_only: bool = False,
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
        files = list_images(folder)
        if max_images:
            files = files[:max_images]
        self.channels = channels
        self.images = ImageFiles(
            files,
            check=self._check,
            keep=(lambda pixels: not is_greyscale(pixels)) if colour_only else None,
            left_out_as="greyscale (colorization learns from colour images only)",
            verify=verify,
            skip_bad=skip_bad,
            cache=cache,
        )
        self.greyscale_skipped = list(self.images.left_out)
        if self.greyscale_skipped:
            log.warning(
                "%s: skipped %d greyscale file(s) of %d, e.g. %s",
                folder,
                len(self.greyscale_skipped),
                len(files),
                self.greyscale_skipped[0].name,
            )
        self.mode, self.load_size, self.crop_size = preprocess_mode, load_size, crop_size
        self.flip, self.train, self.seed = flip, train, seed

    def _check(self, path: Path, pixels: np.ndarray) -> None:
        check_channels(path, pixels.shape[2], self.channels, "data.in_channels")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images)
        path = str(self.images.files[i])
        x = match_channels(to_tensor(self.images.load(i)), self.channels, path)
        aug = draw_augment(self.rng(key), self.flip) if self.train else CENTRE
        x = preprocess(x, self.mode, self.load_size, self.crop_size, aug, path)
        return {"image": x, "path": path}
