"""Unpaired data with a flood mask and a simulated image per A image (`pixmorph data synth --flood`).

Layout: `trainA/` (real dry scenes), `trainB/` (flooded scenes), `maskA/` (one binary mask per
A image, matched by file stem, white = may flood) and `simA/` (simulated dry scenes, for
sim-to-real adaptation).
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from pixmorph.data.images import list_images, read_image, to_tensor
from pixmorph.data.load_options import DEFAULT_OPTIONS, LoadOptions
from pixmorph.data.transforms import CENTRE, Augment, preprocess
from pixmorph.data.unaligned import UnalignedDataset
from pixmorph.errors import DataError


def _nearest(x: Tensor, h: int, w: int) -> Tensor:
    """Resize (C, H, W) to (C, h, w) by nearest-neighbour sampling: a binary mask stays binary."""
    if tuple(x.shape[1:]) == (h, w):
        return x
    return F.interpolate(x[None], size=(h, w), mode="nearest")[0]


def prepare_mask(mask: Tensor, image_hw: tuple[int, int], opt: LoadOptions, aug: Augment) -> Tensor:
    """A (1, H, W) 0/1 mask given the resize, crop and flip its image got, by nearest sampling.

    The mask first takes its image's own size, then the size preprocessing resizes the image
    to, then the image's crop and flip.
    """
    h, w = image_hw
    mask = _nearest(mask, h, w)
    mode, load, crop = opt.preprocess_mode, opt.load_size, opt.crop_size
    if mode == "resize_and_crop":
        mask = _nearest(mask, load, load)
    elif mode in ("scale_width", "scale_width_and_crop"):
        mask = _nearest(mask, max(crop, round(h * load / w)), load)
    # what is left is a crop (or nothing) and the flip, which never mix pixel values
    rest = "crop" if mode in ("resize_and_crop", "crop", "scale_width_and_crop") else "none"
    return preprocess(mask, rest, load, crop, aug, "mask")


class FloodDataset(UnalignedDataset):
    """Yields the unaligned items plus "mask_a" (1, H, W; 1 = may change) and/or "sim" (C_a, H, W).

    The mask of `trainA/x.jpg` is the image of stem `x` in `mask_folder` (any format, any size
    of the same aspect; white = may flood); it gets the A image's own resize, crop and flip with
    nearest-neighbour sampling. "sim" is a simulated A-domain image drawn independently per
    sample from `sim_folder`, with its own crop and flip. Either folder may be None.
    """

    def __init__(
        self,
        folder_a: str | Path,
        folder_b: str | Path,
        mask_folder: str | Path | None = None,
        sim_folder: str | Path | None = None,
        *,
        a_channels: int = 3,
        b_channels: int = 3,
        direction: str = "AtoB",
        options: LoadOptions = DEFAULT_OPTIONS,
    ) -> None:
        if direction != "AtoB":
            raise DataError("flood masks and simulated images belong to domain A: use AtoB")
        super().__init__(folder_a, folder_b, a_channels=a_channels, b_channels=b_channels,
                         options=options)  # fmt: skip
        self.mask_folder = Path(mask_folder) if mask_folder is not None else None
        self.masks: list[Path] = []
        if self.mask_folder is not None:
            self.masks = self._match_masks(self.mask_folder)
        self.images_sim = None
        if sim_folder is not None:
            self.images_sim = options.image_files(options.files(sim_folder))

    def _match_masks(self, folder: Path) -> list[Path]:
        """The mask of every A image, in the A images' order; a DataError names what is missing."""
        if not folder.is_dir():
            raise DataError(f"mask folder {folder} does not exist; it needs one mask per A image")
        by_stem: dict[str, list[Path]] = {}
        for p in list_images(folder):
            by_stem.setdefault(p.stem, []).append(p)
        masks = []
        for image in self.images_a.files:
            found = by_stem.get(image.stem, [])
            if len(found) != 1:
                what = "no mask" if not found else f"{len(found)} masks ({found[0].name}, ...)"
                raise DataError(
                    f"{folder} holds {what} for the image {image}; every A image needs exactly "
                    f"one mask of the same file stem ({image.stem}.png)"
                )
            masks.append(found[0])
        return masks

    def _mask(self, i: int, aug: Augment) -> Tensor:
        image, path = self.images_a.files[i], self.masks[i]
        h, w = self.images_a.load(i).shape[:2]
        mask = to_tensor(read_image(path))[:1]  # (1, h_m, w_m) in [-1, 1]
        h_m, w_m = mask.shape[1:]
        if abs(h_m * w - w_m * h) > max(h, w):  # aspect ratios differ by more than a pixel
            raise DataError(
                f"mask {path} is {w_m}x{h_m} but its image {image} is {w}x{h}; a mask must "
                "cover its image (same size, or the same aspect ratio)"
            )
        return (prepare_mask(mask, (h, w), self.opt, aug) > 0).float()

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images_a)
        # One generator per key draws, in order: A's and B's augmentation, B, then the
        # simulated image and its augmentation, so a resumed run sees the same samples.
        rng = self.rng(key) if self.opt.train else None
        if rng is not None:
            aug_a, aug_b = self.opt.augment(rng), self.opt.augment(rng)
            j = int(rng.integers(len(self.images_b)))
        else:
            aug_a = aug_b = CENTRE
            j = key % len(self.images_b)
        item: dict[str, Tensor | str] = {
            "a": self._load(self.images_a, i, self.a_channels, "in", aug_a),  # (C_a, H, W)
            "b": self._load(self.images_b, j, self.b_channels, "out", aug_b),  # (C_b, H, W)
            "path": str(self.images_a.files[i]),
            "path_b": str(self.images_b.files[j]),
        }
        if self.masks:
            item["mask_a"] = self._mask(i, aug_a)  # (1, H, W)
        if self.images_sim is not None:
            if rng is not None:
                aug_s, k = self.opt.augment(rng), int(rng.integers(len(self.images_sim)))
            else:
                aug_s, k = CENTRE, key % len(self.images_sim)
            item["sim"] = self._load(self.images_sim, k, self.a_channels, "in", aug_s)
        return item
