"""Unpaired data with a flood mask per A image (the layout of `pixmorph data synth --flood`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from pixmorph.data.images import read_image, to_tensor
from pixmorph.data.unaligned import UnalignedDataset
from pixmorph.errors import DataError


class MaskedUnalignedDataset(UnalignedDataset):
    """Yields the unaligned items plus "mask_a" (1, H, W): 1 where A may change, else 0.

    The mask of `trainA/x.png` is `mask_folder/x.png` (any single- or multi-channel image,
    white = may change); it gets the A image's own crop and flip.
    """

    def __init__(self, folder_a: str | Path, folder_b: str | Path, mask_folder: str | Path,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(folder_a, folder_b, **kwargs)
        if self.direction != "AtoB":
            raise DataError("flood masks belong to domain A: use data.direction=AtoB to train")
        self.mask_folder = Path(mask_folder)
        missing = [p.name for p in self.images_a.files if not self._mask_path(p).is_file()]
        if missing:
            raise DataError(
                f"{self.mask_folder} lacks the masks of {len(missing)} image(s) of "
                f"{self.folder_a}, e.g. {missing[0]}; every A image needs a mask of the same "
                "stem (.png)"
            )

    def _mask_path(self, image: Path) -> Path:
        return self.mask_folder / f"{image.stem}.png"

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        item = super().__getitem__(key)
        # the parent drew A's augmentation first from the key's generator: draw it again
        aug = self.opt.augment(self.rng(key))
        path = self._mask_path(self.images_a.files[key % len(self.images_a)])
        mask = to_tensor(read_image(path))[:1]  # (1, H, W) in [-1, 1]
        mask = self.opt.prepare(mask, aug, str(path))
        item["mask_a"] = (mask > 0).float()
        return item
