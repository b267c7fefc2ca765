"""Images with colour-coded label maps, for segmentation: two layouts, one item shape.

- aligned A|B files where one half is the label map (facades: photo left, labels right, so
  data.direction=AtoB reads photo -> labels);
- an image folder with a label folder, matched by file stem: `trainA/` + `labelA/` for
  training and `testA/` + `testlabelA/` for evaluation (the layout of `pixmorph data synth
  --flood`; data.direction=BtoA takes the B folders), or `images/` + `labels/` inside the split
  folder (`root/train/images`, `root/train/labels`, ...).

Every item is {"a": image (C, H, W) in [-1, 1], "b": label map (3, H, W) in clean palette
colours, "labels": class indices (H, W) int64, "path"}. Label colours become classes at the
file's own size, before any resize (nearest palette colour, so JPEG noise goes); resizing then
works on one-hot maps, so a resized label map holds palette colours only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pixmorph.data.aligned import AlignedDataset
from pixmorph.data.base import KeyedDataset
from pixmorph.data.images import list_images, match_channels, read_image, to_tensor
from pixmorph.data.load_options import DEFAULT_OPTIONS, LoadOptions
from pixmorph.data.palette import class_colours, label_rgb, nearest_classes, palette_tensor
from pixmorph.data.transforms import Augment
from pixmorph.errors import DataError

MAX_PALETTE_FILES = 64  # label maps read to derive a palette: enough for every class to show


class LabelReader:
    """Turns decoded label pixels into class indices, resized and cropped like their image."""

    def __init__(self, palette: np.ndarray | list, options: LoadOptions) -> None:
        self.palette = palette_tensor(palette)  # (K, 3) in [-1, 1]
        self.opt = options

    def classes(self, pixels: np.ndarray) -> Tensor:
        """(H, W) int64 class indices of a decoded label map, at its own size."""
        rgb = to_tensor(label_rgb(pixels))  # (3, H, W)
        return nearest_classes(rgb[None], self.palette)[0]

    def prepare(self, pixels: np.ndarray, aug: Augment, name: str) -> Tensor:
        """Class indices (H', W') after the dataset's resize, crop and flip."""
        k = len(self.palette)
        onehot = torch.nn.functional.one_hot(self.classes(pixels), k).permute(2, 0, 1)
        soft = self.opt.prepare(onehot.float() * 2 - 1, aug, name)  # (K, H', W')
        return soft.argmax(0)

    def item(self, image: Tensor, labels: Tensor, path: str) -> dict[str, Tensor | str]:
        return {"a": image, "b": class_colours(labels[None], self.palette)[0], "labels": labels,
                "path": path}  # fmt: skip


class AlignedLabelDataset(AlignedDataset):
    """A|B files whose target half (B for AtoB, A for BtoA) is a colour-coded label map."""

    def __init__(
        self,
        folder: str | Path,
        palette: np.ndarray | list,
        *,
        direction: str = "AtoB",
        in_channels: int = 3,
        options: LoadOptions = DEFAULT_OPTIONS,
    ) -> None:
        super().__init__(folder, direction=direction, in_channels=in_channels, out_channels=3,
                         options=options)  # fmt: skip
        self.reader = LabelReader(palette, options)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images)
        name = str(self.images.files[i])
        pixels = self.images.load(i)
        image, label = halves(pixels, self.direction)
        aug = self.opt.augment(self.rng(key))
        x = match_channels(to_tensor(image), self.in_channels, name, "data.in_channels")
        return self.reader.item(self.opt.prepare(x, aug, name), self.reader.prepare(label, aug, name),
                                name)  # fmt: skip


class LabelFolderDataset(KeyedDataset):
    """Images in one folder, their label maps in another under the same stem."""

    def __init__(
        self,
        images: str | Path,
        labels: str | Path,
        palette: np.ndarray | list,
        *,
        in_channels: int = 3,
        options: LoadOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.opt = options
        self.in_channels = in_channels
        self.images = options.image_files(options.files(images))
        by_stem = {p.stem: p for p in list_images(labels)}
        missing = [p.name for p in self.images.files if p.stem not in by_stem]
        if missing:
            raise DataError(
                f"{labels} lacks the label maps of {len(missing)} image(s) of {images}, e.g. "
                f"{missing[0]}; every image needs a label map of the same stem"
            )
        self.labels = [by_stem[p.stem] for p in self.images.files]
        self.reader = LabelReader(palette, options)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        i = key % len(self.images)
        name = str(self.images.files[i])
        aug = self.opt.augment(self.rng(key))
        pixels, label = self.images.load(i), read_image(self.labels[i])
        if pixels.shape[:2] != label.shape[:2]:
            raise DataError(
                f"{name} is {pixels.shape[1]}x{pixels.shape[0]} but its label map "
                f"{self.labels[i]} is {label.shape[1]}x{label.shape[0]}; they must match"
            )
        x = match_channels(to_tensor(pixels), self.in_channels, name)
        labels = self.reader.prepare(label, aug, str(self.labels[i]))
        return self.reader.item(self.opt.prepare(x, aug, name), labels, name)


def halves(pixels: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """(image, label map) halves of an A|B array: the label map is the target side."""
    half = pixels.shape[1] // 2
    left, right = pixels[:, :half], pixels[:, half:]
    return (left, right) if direction == "AtoB" else (right, left)


def label_folders(
    root: str | Path, train: bool, direction: str = "AtoB"
) -> tuple[Path, Path] | None:
    """(image folder, label folder) of a labelled root for one split; None if it has none."""
    r = Path(root)
    side = "A" if direction == "AtoB" else "B"
    if train:
        pairs = [(f"train{side}", f"label{side}"), ("train/images", "train/labels"),
                 ("images", "labels")]  # fmt: skip
    else:
        pairs = [(f"test{side}", f"testlabel{side}"), ("test/images", "test/labels"),
                 ("val/images", "val/labels")]  # fmt: skip
    for images, labels in pairs:
        if (r / images).is_dir() and (r / labels).is_dir():
            return r / images, r / labels
    return None


def palette_sources(folder: Path, labels: Path | None, direction: str) -> Iterator[np.ndarray]:
    """Decoded label maps to derive a palette from: a label folder's files, or A|B target halves."""
    if labels is not None:
        for path in list_images(labels)[:MAX_PALETTE_FILES]:
            yield read_image(path)
        return
    for path in list_images(folder)[:MAX_PALETTE_FILES]:
        yield halves(read_image(path), direction)[1]
