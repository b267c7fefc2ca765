"""Realism: FID and KID between translated images and real images of the target domain.

Works for any method: outputs are compared with real images as distributions, so the two sets
need not correspond (unpaired data: translate testA, compare with testB; paired data: outputs
against targets).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import pixmorph.metrics as metrics
from pixmorph.data.batching import same_size_runs
from pixmorph.data.images import list_images, open_image, save_image, to_tensor
from pixmorph.errors import DataError
from pixmorph.evaluation.inception_weights import FeatureNet
from pixmorph.evaluation.page import render_unpaired
from pixmorph.evaluation.summary import write_summary
from pixmorph.inference.translator import Translator, translate

log = logging.getLogger(__name__)


@dataclass
class Realism:
    """Which realism scores to compute, with which feature network and settings."""

    net: FeatureNet
    fid: bool = True
    kid: bool = True
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 16

    def features(self, images: Iterable[Tensor]) -> np.ndarray:
        """(N, D) features of (C, H, W) or (B, C, H, W) tensors in [-1, 1], any sizes."""
        chunks = [
            self.net(batch.to(next(self.net.parameters()).device)).cpu().double().numpy()
            for batch in batches_by_size(images, self.batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.net.dim))

    def scores(self, fake: np.ndarray, real: np.ndarray) -> dict[str, Any]:
        """FID and/or KID of fake against real features, with what is needed to read them."""
        if len(fake) < 2 or len(real) < 2:
            raise DataError(
                f"FID/KID need at least 2 images on each side, got {len(fake)} translated and "
                f"{len(real)} real"
            )
        out: dict[str, Any] = {
            "feature_net": self.net.describe(),
            "count_fake": len(fake),
            "count_real": len(real),
        }
        if self.fid:
            out["fid"] = metrics.fid(fake, real)
        if self.kid:
            mean, std = metrics.kid(
                fake, real, num_subsets=self.kid_subsets, subset_size=self.kid_subset_size
            )
            out["kid"], out["kid_std"] = mean, std
            out["kid_subset_size"] = min(self.kid_subset_size, len(fake), len(real))
        if min(len(fake), len(real)) < self.net.dim:
            out["note"] = (
                f"fewer images than feature dimensions ({self.net.dim}): FID is biased upward "
                "and only comparable between evaluations with the same image counts"
            )
        return out


def batches_by_size(images: Iterable[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Stack consecutive same-size images into batches of at most batch_size."""
    singles = (img for item in images for img in (item if item.dim() == 4 else item[None]))
    for group in same_size_runs(singles, batch_size, lambda t: tuple(t.shape)):
        yield torch.stack(group)


def folder_images(folder: Path, channels: int) -> Iterator[Tensor]:
    """The images of a folder as (C, H, W) tensors in [-1, 1], in name order."""
    for path in list_images(folder):
        yield to_tensor(open_image(path, channels))


def unpaired_folders(root: str | Path, direction: str) -> tuple[Path, Path] | None:
    """(inputs, real targets) of an unaligned root: testA -> testB for AtoB (val* as fallback)."""
    r = Path(root)
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    for split in ("test", "val"):
        if (r / f"{split}{src}").is_dir() and (r / f"{split}{dst}").is_dir():
            return r / f"{split}{src}", r / f"{split}{dst}"
    return None


def evaluate_unpaired(
    translator: Translator,
    inputs: str | Path,
    real: str | Path,
    realism: Realism,
    out_dir: str | Path | None = None,
    save_images: bool = True,
    on_batch: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Translate every image of `inputs` and score the outputs against the images of `real`."""
    out = Path(out_dir) if out_dir else None
    files = list_images(inputs)
    names: list[str] = []

    def outputs() -> Iterator[Tensor]:
        for k in range(0, len(files), realism.batch_size):
            chunk = files[k : k + realism.batch_size]
            images = [to_tensor(open_image(f, translator.in_channels)) for f in chunk]
            for f, x, y in zip(chunk, images, translate(translator, images), strict=True):
                names.append(f.stem)
                if out and save_images:
                    save_image(x, out / "images" / f"{f.stem}_input.png")
                    save_image(y, out / "images" / f"{f.stem}_output.png")
                yield y
            if on_batch:
                on_batch(len(chunk))

    fake = realism.features(outputs())
    real_feats = realism.features(folder_images(Path(real), translator.out_channels))
    summary = {
        "mode": "unpaired",
        "count": len(names),
        "inputs": str(inputs),
        "real": str(real),
        "realism": realism.scores(fake, real_feats),
        "images": [{"name": n} for n in names],
        "checkpoint_step": translator.step,
        "direction": translator.direction or translator.config.data.direction,
    }
    if out:
        write_summary(summary, out)
        (out / "index.html").write_text(render_unpaired(summary, save_images))
    return summary
