"""Paired evaluation: per-image and mean L1, PSNR and SSIM, as JSON and an HTML page."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from pixmorph import metrics
from pixmorph.data.images import preview, save_image
from pixmorph.infer import Translator

PSNR_CAP = 100.0
_BASIC = ("l1", "psnr", "ssim")  # identical images have infinite PSNR; JSON has no infinity


def evaluate_paired(
    translator: Translator,
    dataset: Dataset,
    out_dir: str | Path | None = None,
    batch_size: int = 4,
    save_images: bool = True,
    on_batch: Callable[[int], Any] | None = None,
    extra_metrics: Callable[[Tensor, Tensor], dict[str, Tensor]] | None = None,
) -> dict[str, Any]:
    """Translate every input of `dataset` and compare with its target; write a report if asked.

    `extra_metrics(fake, real)` (a method's `eval_metrics`) adds named per-image figures.
    """
    out = Path(out_dir) if out_dir else None
    if out:
        (out / "images").mkdir(parents=True, exist_ok=True)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    rows: list[dict[str, Any]] = []
    for batch in loader:
        fake = translator(batch["a"]).cpu()
        real = batch["b"].float()
        if fake.shape != real.shape:
            raise ValueError(
                f"output {tuple(fake.shape)} and target {tuple(real.shape)} differ in shape; "
                "is the direction right?"
            )
        l1 = metrics.l1(fake, real)
        psnr = metrics.psnr(fake, real).clamp(max=PSNR_CAP)
        ssim = metrics.ssim(fake, real)
        extra = extra_metrics(fake, real) if extra_metrics else {}
        for j, path in enumerate(batch["path"]):
            name = Path(path).stem
            row = {"name": name, "l1": float(l1[j]), "psnr": float(psnr[j]), "ssim": float(ssim[j])}
            row.update({k: float(v[j]) for k, v in extra.items()})
            if out and save_images:
                for kind, t in (("input", batch["a"][j]), ("output", fake[j]), ("target", real[j])):
                    save_image(preview(t), out / "images" / f"{name}_{kind}.png")
            rows.append(row)
        if on_batch:
            on_batch(len(batch["path"]))
    summary = {
        "count": len(rows),
        "mean": {k: _mean([r[k] for r in rows]) for k in _metric_names(rows)},
        "images": rows,
        "checkpoint_step": translator.step,
        "direction": translator.direction or translator.config.data.direction,
    }
    if out:
        (out / "metrics.json").write_text(json.dumps(summary, indent=2))
        (out / "index.html").write_text(render_html(summary, save_images))
    return summary


def _metric_names(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in rows[0] if k != "name"] if rows else ["l1", "psnr", "ssim"]


def _mean(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).mean()) if values else math.nan


def render_html(summary: dict[str, Any], with_images: bool = True) -> str:
    """A self-contained page: mean metrics and one row per image (input | output | target)."""
    m = summary["mean"]
    head = (
        "<!doctype html><meta charset='utf-8'><title>pixmorph evaluation</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;text-align:right}"
        "img{width:160px;image-rendering:pixelated}</style>"
        f"<h1>pixmorph evaluation</h1><p>{summary['count']} images, step "
        f"{summary['checkpoint_step']}, direction {html.escape(str(summary['direction']))}</p>"
        f"<p>mean L1 {m['l1']:.4f} &middot; PSNR {m['psnr']:.2f} dB &middot; SSIM {m['ssim']:.4f}"
        + "".join(f" &middot; {html.escape(k)} {v:.4g}" for k, v in m.items() if k not in _BASIC)
        + "</p>"
        "<table><tr><th>name</th><th>L1</th><th>PSNR</th><th>SSIM</th>"
        + ("<th>input</th><th>output</th><th>target</th>" if with_images else "")
        + "</tr>"
    )
    rows = []
    for r in summary["images"]:
        name = html.escape(r["name"])
        cells = (
            f"<td>{name}</td><td>{r['l1']:.4f}</td><td>{r['psnr']:.2f}</td><td>{r['ssim']:.4f}</td>"
        )
        if with_images:
            cells += "".join(
                f"<td><img src='images/{name}_{k}.png' alt='{k}'></td>"
                for k in ("input", "output", "target")
            )
        rows.append(f"<tr>{cells}</tr>")
    return head + "".join(rows) + "</table>\n"
