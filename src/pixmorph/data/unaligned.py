"""Unpaired data: two folders of images (domains A and B) with no correspondence between them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from pixmorph.data.base import ImageFiles, KeyedDataset
from pixmorph.data.images import check_channels, match_channels, to_tensor
from pixmorph.data.load_options import DEFAULT_OPTIONS, LoadOptions
from pixmorph.data.transforms import CENTRE, Augment
from pixmorph.errors import DataError


def domain_folders(
    root: str | Path = "", root_a: str | Path = "", root_b: str | Path = "", split: str = "train"
) -> tuple[Path, Path]:
    """`root/trainA` and `root/trainB` (for split="train"), or the two explicit folders."""
    if str(root_a) or str(root_b):
        if not (str(root_a) and str(root_b)):
            raise DataError(
                "data.root_a and data.root_b go together: set both folders, or neither and "
                "point --data at a root holding trainA/ and trainB/"
            )
        return Path(root_a), Path(root_b)
    if not str(root):
        raise DataError(
            "no data given: pass --data ROOT (holding trainA/ and trainB/) "
            "or set data.root_a and data.root_b"
        )
    r = Path(root)
    if not r.exists():
        raise DataError(f"data folder {r} does not exist")
    a, b = r / f"{split}A", r / f"{split}B"
    missing = [p.name + "/" for p in (a, b) if not p.is_dir()]
    if missing:
        hint = (
            f"; {r / split} looks aligned: `pixmorph data unpair {r} OUT` makes the unpaired layout"
            if (r / split).is_dir()
            else ""
        )
        raise DataError(
            f"{r} lacks {' and '.join(missing)}: unpaired data needs {a.name}/ and {b.name}/ "
            f"folders under the root, or set data.root_a and data.root_b{hint}"
        )
    return a, b


def domains(batch: dict[str, Any], direction: str) -> tuple[Tensor, Tensor]:
    """(domain A, domain B) images of a batch whose "a"/"b" follow `direction` (BtoA swaps)."""
    a, b = batch["a"], batch["b"]
    return (b, a) if direction == "BtoA" else (a, b)


def has_domains(root: str | Path, split: str) -> bool:
    """Whether `root` holds `{split}A/` and `{split}B/`."""
    r = Path(root)
    return (r / f"{split}A").is_dir() and (r / f"{split}B").is_dir()


def _channel_check(channels: int, side: str) -> Callable[[Path, np.ndarray], None]:
    """A start-up check that a domain's files can give `channels` (data.in/out_channels)."""

    def check(path: Path, pixels: np.ndarray) -> None:
        check_channels(path, pixels.shape[2], channels, f"data.{side}_channels")

    return check


class UnalignedDataset(KeyedDataset):
    """Yields {"a", "b", "path", "path_b"}: A picked by the key, B drawn independently.

    In training the B image and both augmentations come from the key's own seeded generator, so
    a resumed run sees exactly the pairs it would have seen. For evaluation (train=False) B is
    `key % len(B)` and nothing is random. `direction="BtoA"` swaps what comes out as a and b.
    The a/b images are not pairs, so the dataset declares `paired = False`.
    """

    paired = False

    def __init__(
        self,
        folder_a: str | Path,
        folder_b: str | Path,
        *,
        a_channels: int = 3,
        b_channels: int = 3,
        direction: str = "AtoB",
        options: LoadOptions = DEFAULT_OPTIONS,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DataError(f"direction must be AtoB or BtoA, got {direction!r}")
        self.folder_a, self.folder_b = Path(folder_a), Path(folder_b)
        self.opt = options
        self.a_channels, self.b_channels = a_channels, b_channels
        self.images_a = options.image_files(
            options.files(folder_a), check=_channel_check(a_channels, "in")
        )
        self.images_b = options.image_files(
            options.files(folder_b), check=_channel_check(b_channels, "out")
        )
        self.direction = direction

    def __len__(self) -> int:
        # an epoch covers the larger domain; the smaller one repeats within it
        return max(len(self.images_a), len(self.images_b))

    def describe(self) -> str:
        """The two folders, for messages."""
        return f"the unpaired folders {self.folder_a} and {self.folder_b}"

    def _load(self, images: ImageFiles, i: int, channels: int, side: str, aug: Augment) -> Tensor:
        name = str(images.files[i])
        x = match_channels(to_tensor(images.load(i)), channels, name, f"data.{side}_channels")
        return self.opt.prepare(x, aug, name)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images_a)
        if self.opt.train:
            rng = self.rng(key)
            aug_a, aug_b = self.opt.augment(rng), self.opt.augment(rng)
            j = int(rng.integers(len(self.images_b)))
        else:
            aug_a = aug_b = CENTRE
            j = key % len(self.images_b)
        a = self._load(self.images_a, i, self.a_channels, "in", aug_a)  # (C_a, H, W)
        b = self._load(self.images_b, j, self.b_channels, "out", aug_b)  # (C_b, H, W)
        path_a, path_b = str(self.images_a.files[i]), str(self.images_b.files[j])
        if self.direction == "BtoA":
            a, b, path_a, path_b = b, a, path_b, path_a
        return {"a": a, "b": b, "path": path_a, "path_b": path_b}
