"""A dataset of image files that verifies them up front and can cache decoded images."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from pixmorph.data.images import DataError, open_image

log = logging.getLogger(__name__)


class ImageFiles:
    """An ordered list of image files, checked once, optionally cached in memory."""

    def __init__(
        self,
        files: list[Path],
        channels: int,
        check: Callable[[Path, Image.Image], None] | None = None,
        verify: bool = True,
        skip_bad: bool = False,
        cache: bool = False,
    ) -> None:
        self.channels = channels
        self.cache: dict[int, Image.Image] | None = {} if cache else None
        good: list[Path] = []
        bad: list[str] = []
        for path in files:
            try:
                if verify or check is not None or cache:
                    img = open_image(path, channels)
                    if check is not None:
                        check(path, img)
                    if self.cache is not None:
                        self.cache[len(good)] = img
            except DataError as e:
                if not skip_bad:
                    raise DataError(f"{e} (set data.skip_bad_files=true to skip such files)") from e
                bad.append(str(e))
                continue
            good.append(path)
        if bad:
            log.warning("skipped %d bad image file(s); first: %s", len(bad), bad[0])
        if not good:
            raise DataError(f"none of the {len(files)} image files could be used")
        self.files = good
        self.skipped = bad

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> Image.Image:
        """The decoded image at position i."""
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        return open_image(self.files[i], self.channels)


class KeyedDataset(Dataset):
    """A dataset indexed by sampler keys: key % len picks the item, the key seeds its randomness."""

    seed: int = 0
    paired: bool = True  # False when "b" is not the target of "a" (nothing to evaluate against)

    def __len__(self) -> int:
        raise NotImplementedError

    def rng(self, key: int) -> np.random.Generator:
        """The random generator of one draw of one sample."""
        return np.random.default_rng([self.seed, key])
