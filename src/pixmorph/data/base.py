"""A dataset of image files that verifies them up front and can cache decoded images."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from pixmorph.data.images import read_image
from pixmorph.errors import DataError

log = logging.getLogger(__name__)


class ImageFiles:
    """An ordered list of image files, checked once, optionally cached in memory.

    `load` gives the decoded (H, W, C) array in the file's own sample type (8/16-bit, float),
    so a cache holds no more than the files' pixels. `check` raises DataError for a bad file;
    `keep` returning False leaves a good file out on purpose (listed in `left_out`; the error
    when nothing is left calls them `left_out_as`).
    """

    def __init__(
        self,
        files: list[Path],
        *,
        check: Callable[[Path, np.ndarray], None] | None = None,
        keep: Callable[[np.ndarray], bool] | None = None,
        left_out_as: str = "left out",
        verify: bool = True,
        skip_bad: bool = False,
        cache: bool = False,
    ) -> None:
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        good: list[Path] = []
        bad: list[str] = []
        self.left_out: list[Path] = []
        for path in files:
            try:
                if verify or check is not None or keep is not None or cache:
                    pixels = read_image(path)
                    if check is not None:
                        check(path, pixels)
                    if keep is not None and not keep(pixels):
                        self.left_out.append(path)
                        continue
                    if self.cache is not None:
                        self.cache[len(good)] = pixels
            except DataError as e:
                if not skip_bad:
                    raise DataError(f"{e} (set data.skip_bad_files=true to skip such files)") from e
                bad.append(str(e))
                continue
            good.append(path)
        if bad:
            log.warning("skipped %d bad image file(s); first: %s", len(bad), bad[0])
        if not good:
            raise DataError(
                f"none of the {len(files)} image files could be used"
                + (f"; {len(self.left_out)} were {left_out_as}" if self.left_out else "")
            )
        self.files = good
        self.skipped = bad

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> np.ndarray:
        """The decoded (H, W, C) pixels at position i."""
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        return read_image(self.files[i])


class KeyedDataset(Dataset):
    """A dataset indexed by sampler keys: key % len picks the item, the key seeds its randomness."""

    seed: int = 0
    paired: bool = True  # False when "b" is not the target of "a" (nothing to evaluate against)

    def __len__(self) -> int:
        raise NotImplementedError

    def rng(self, key: int) -> np.random.Generator:
        """The random generator of one draw of one sample."""
        return np.random.default_rng([self.seed, key])
