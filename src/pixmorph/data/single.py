"""A folder of single images (no pairs), e.g. colour photos for colorization."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from torch import Tensor

from pixmorph.data.base import KeyedDataset
from pixmorph.data.images import (
    check_channels,
    is_greyscale,
    match_channels,
    to_tensor,
)
from pixmorph.data.load_options import DEFAULT_OPTIONS, LoadOptions

log = logging.getLogger(__name__)


class SingleDataset(KeyedDataset):
    """Yields {"image": (C, H, W) in [-1, 1], "path"}; `colour_only` leaves greyscale files out."""

    def __init__(
        self,
        folder: str | Path,
        *,
        channels: int = 3,
        colour_only: bool = False,
        options: LoadOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.opt = options
        files = options.files(folder)
        self.channels = channels
        self.images = options.image_files(
            files,
            check=self._check,
            keep=(lambda pixels: not is_greyscale(pixels)) if colour_only else None,
            left_out_as="greyscale (colorization learns from colour images only)",
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

    def _check(self, path: Path, pixels: np.ndarray) -> None:
        check_channels(path, pixels.shape[2], self.channels, "data.in_channels")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images)
        path = str(self.images.files[i])
        x = match_channels(to_tensor(self.images.load(i)), self.channels, path)
        x = self.opt.prepare(x, self.opt.augment(self.rng(key)), path)
        return {"image": x, "path": path}
