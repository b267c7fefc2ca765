"""How a dataset reads and augments images: one object built from DataConfig, taken by every
dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from pixmorph.config import Config
from pixmorph.data.base import ImageFiles
from pixmorph.data.images import list_images
from pixmorph.data.transforms import CENTRE, Augment, draw_augment, preprocess
from pixmorph.data.val_split import SplitPart, select, split_part
from pixmorph.errors import ConfigError

# preprocess modes whose training images keep their own shape (a quarter turn would change it)
NON_SQUARE = ("none", "scale_width")


@dataclass(frozen=True)
class LoadOptions:
    """The reading settings of a dataset, for training or evaluation.

    Evaluation reads deterministically: resize to the crop size (no random crop), no flip.
    """

    preprocess_mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    rotate: bool = False
    train: bool = True
    seed: int = 0
    verify: bool = True
    skip_bad: bool = False
    cache: bool = False
    max_images: int = 0
    split: SplitPart = "all"  # the part of a folder read under data.val_fraction
    val_fraction: float = 0.0

    @classmethod
    def of(cls, cfg: Config, train: bool, root: str | None = None) -> LoadOptions:
        """The options of a training or evaluation dataset (root: its data root, if not data.root)."""
        d = cfg.data
        if d.rotate and train and d.preprocess in NON_SQUARE:
            raise ConfigError(
                f"data.rotate turns square crops; data.preprocess={d.preprocess!r} keeps "
                "whole images of any shape: use resize_and_crop, crop or scale_width_and_crop"
            )
        return cls(
            preprocess_mode=d.preprocess if train else "resize_and_crop",
            load_size=d.load_size if train else d.crop_size,
            crop_size=d.crop_size,
            flip=d.flip and train,
            rotate=d.rotate and train,
            train=train,
            seed=cfg.train.seed,
            verify=d.verify,
            skip_bad=d.skip_bad_files,
            cache=d.cache,
            max_images=d.max_images,
            split=split_part(cfg, train, root),
            val_fraction=d.val_fraction,
        )

    def files(self, folder: str | Path) -> list[Path]:
        """The image files of a folder (this split's part of them), at most max_images."""
        files = select(list_images(folder), folder, self.split, self.val_fraction, self.seed)
        return files[: self.max_images] if self.max_images else files

    def image_files(self, files: list[Path], **kw: Any) -> ImageFiles:
        """Files checked (verify), skipped when bad (skip_bad) and cached as these options say."""
        return ImageFiles(files, verify=self.verify, skip_bad=self.skip_bad, cache=self.cache, **kw)

    def augment(self, rng: np.random.Generator) -> Augment:
        """A random crop position, flip and turns when training, the centre otherwise."""
        return draw_augment(rng, self.flip, self.rotate) if self.train else CENTRE

    def prepare(self, x: Tensor, aug: Augment, name: str) -> Tensor:
        """Resize and crop (C, H, W) as preprocess_mode says."""
        return preprocess(x, self.preprocess_mode, self.load_size, self.crop_size, aug, name)


DEFAULT_OPTIONS = LoadOptions()
