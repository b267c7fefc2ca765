"""Paired evaluation: per-image and mean L1, PSNR and SSIM (plus FID/KID if asked), JSON + HTML."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

import pixmorph.metrics as metrics
from pixmorph.data.batching import item_shapes, same_size_runs
from pixmorph.data.images import preview, save_image
from pixmorph.errors import DataError
from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.page import render_paired
from pixmorph.evaluation.summary import write_summary
from pixmorph.inference.translator import Translator
from pixmorph.methods.base import Baseline

PAIRED_METRICS = ("l1", "psnr", "ssim")


def paired_scores(fake: Tensor, real: Tensor) -> dict[str, Tensor]:
    """L1, PSNR (capped) and SSIM per image of two (B, C, H, W) batches in [-1, 1]."""
    if fake.shape != real.shape:
        raise ValueError(
            f"output {tuple(fake.shape)} and target {tuple(real.shape)} differ in shape; "
            "is the direction right?"
        )
    return {
        "l1": metrics.l1(fake, real),
        "psnr": metrics.psnr(fake, real).clamp(max=metrics.PSNR_CAP),
        "ssim": metrics.ssim(fake, real),
    }


def require_paired(dataset: Dataset) -> None:
    """Refuse a dataset whose "b" is not the target of its "a" (it says so by `paired = False`)."""
    if not getattr(dataset, "paired", True):
        what = dataset.describe() if hasattr(dataset, "describe") else "this data"
        raise DataError(
            f"cannot score {what} image by image: their A and B images are not pairs; give an "
            "aligned folder (A|B side by side) or a root holding test/, or compare unpaired "
            "data by FID/KID (pixmorph evaluate --mode unpaired --fid)"
        )


def evaluate_paired(
    translator: Translator,
    dataset: Dataset,
    out_dir: str | Path | None = None,
    batch_size: int = 4,
    save_images: bool = True,
    on_batch: Callable[[int], Any] | None = None,
    realism: Realism | None = None,
    extra_metrics: Callable[[Tensor, Tensor], dict[str, Tensor]] | None = None,
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    """Translate every input of `dataset` and compare with its target; write a report if asked.

    `extra_metrics(fake, real)` (a method's `eval_metrics`) adds named per-image figures;
    `baseline` (a method's `eval_baseline`) is scored with the same figures, under "baseline".
    """
    require_paired(dataset)
    out = Path(out_dir) if out_dir else None
    if out:
        (out / "images").mkdir(parents=True, exist_ok=True)

    def score(fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        scores = paired_scores(fake, real)
        return scores | extra_metrics(fake, real) if extra_metrics else scores

    rows: list[dict[str, Any]] = []
    fakes: list[np.ndarray] = []
    reals: list[np.ndarray] = []
    for batch in _batches(dataset, batch_size):
        fake = translator(batch["a"]).cpu()
        real = batch["b"].float()
        scores = score(fake, real)
        base = baseline.predict(batch["a"], tuple(real.shape[2:])) if baseline else None
        base_scores = score(base, real) if base is not None else {}
        for j, path in enumerate(batch["path"]):
            name = Path(path).stem
            row = {"name": name, **{k: float(v[j]) for k, v in scores.items()}}
            images = {"input": batch["a"][j]}
            if base is not None:
                row["baseline"] = {k: float(v[j]) for k, v in base_scores.items()}
                images[baseline.name] = base[j]
            images |= {"output": fake[j], "target": real[j]}
            rows.append(row)
            if out and save_images:
                for kind, t in images.items():
                    save_image(preview(t), out / "images" / f"{name}_{kind}.png")
        if realism:
            # features batch by batch, so no image set is ever held in memory
            fakes.append(realism.features([fake]))
            reals.append(realism.features([real]))
        if on_batch:
            on_batch(len(batch["path"]))
    summary: dict[str, Any] = {
        "mode": "paired",
        "count": len(rows),
        "mean": {k: _mean([r[k] for r in rows]) for k in _metric_names(rows)},
        "images": rows,
        "checkpoint_step": translator.step,
        "direction": translator.direction or translator.config.data.direction,
    }
    if baseline is not None:
        names = _metric_names(rows)
        summary["baseline"] = {
            "name": baseline.name,
            "mean": {k: _mean([r["baseline"][k] for r in rows]) for k in names},
        }
    if realism:
        summary["realism"] = realism.scores(np.concatenate(fakes), np.concatenate(reals))
    if out:
        write_summary(summary, out)
        (out / "index.html").write_text(render_paired(summary, save_images))
    return summary


def _metric_names(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in rows[0] if k not in ("name", "baseline")] if rows else list(PAIRED_METRICS)


def _mean(values: list[float]) -> float:
    # a figure undefined for an image (NaN: a segmentation class in neither map) is left out
    return float(torch.tensor(values, dtype=torch.float64).nanmean()) if values else math.nan


def _batches(dataset: Dataset, batch_size: int) -> Iterator[dict[str, Any]]:
    """Batches in order without a DataLoader, whose iterator would draw from the global RNG.

    A change of image size starts a new batch: test sets (e.g. Set14) mix sizes.
    """
    items = (dataset[i] for i in range(len(dataset)))  # type: ignore[arg-type]
    for group in same_size_runs(items, batch_size, item_shapes):
        yield torch.utils.data.default_collate(group)


@torch.no_grad()
def evaluate_method(
    translate_fn: Callable[[Tensor], Tensor],
    dataset: Dataset,
    batch_size: int = 4,
    extra: Callable[[Tensor, Tensor], dict[str, Tensor]] | None = None,
    seen: Callable[[Tensor, Tensor], None] | None = None,
) -> dict[str, float]:
    """Mean paired metrics of a translate function on a dataset of {"a", "b"} batches.

    `extra(fake, real)` adds a method's own per-image figures (e.g. SR's Y-channel PSNR);
    `seen(fake, real)` is called with every batch (e.g. to collect features for KID).
    """
    sums = dict.fromkeys(PAIRED_METRICS, 0.0)
    counts = dict.fromkeys(PAIRED_METRICS, 0)  # per figure: NaNs (undefined figures) are left out
    for batch in _batches(dataset, batch_size):
        fake = translate_fn(batch["a"]).float().cpu().clamp(-1, 1)
        real = batch["b"].float()
        scores = paired_scores(fake, real)
        if extra is not None:
            scores.update(extra(fake, real))
        if seen is not None:
            seen(fake, real)
        for k, v in scores.items():
            sums[k] = sums.get(k, 0.0) + float(v.nansum())
            counts[k] = counts.get(k, 0) + int((~v.isnan()).sum())
    return {k: v / counts[k] if counts[k] else math.nan for k, v in sums.items()}
