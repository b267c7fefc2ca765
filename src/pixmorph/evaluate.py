"""Paired evaluation: per-image and mean metrics (by default L1, PSNR, SSIM), as JSON and HTML."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from pixmorph.data.images import save_image
from pixmorph.eval_protocol import PAIRED_RGB, EvalProtocol
from pixmorph.eval_protocol import PSNR_CAP as PSNR_CAP  # re-exported for existing callers
from pixmorph.infer import Translator


def size_batches(dataset: Dataset, batch_size: int) -> Iterator[dict[str, Any]]:
    """Collated batches of consecutive items; a change of image size starts a new batch."""
    # Evaluation folders (e.g. Set14) mix image sizes, which one tensor batch cannot hold.
    pending: list[dict[str, Any]] = []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        item = dataset[i]
        if pending and (
            len(pending) == batch_size
            or item["a"].shape != pending[0]["a"].shape
            or item["b"].shape != pending[0]["b"].shape
        ):
            yield default_collate(pending)
            pending = []
        pending.append(item)
    if pending:
        yield default_collate(pending)


def evaluate_paired(
    translator: Translator,
    dataset: Dataset,
    out_dir: str | Path | None = None,
    batch_size: int = 4,
    save_images: bool = True,
    on_batch: Callable[[int], Any] | None = None,
    protocol: EvalProtocol = PAIRED_RGB,
) -> dict[str, Any]:
    """Translate every input of `dataset`, score it against its target by `protocol`, report."""
    out = Path(out_dir) if out_dir else None
    if out:
        (out / "images").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for batch in size_batches(dataset, batch_size):
        fake = translator(batch["a"]).cpu()
        real = batch["b"].float()
        if fake.shape != real.shape:
            raise ValueError(
                f"output {tuple(fake.shape)} and target {tuple(real.shape)} differ in shape; "
                "is the direction right?"
            )
        scores = {m.name: m.fn(fake, real) for m in protocol.metrics}
        base = None
        if protocol.baseline is not None:
            base = protocol.baseline(batch["a"], tuple(real.shape[2:]))
            base_scores = {m.name: m.fn(base, real) for m in protocol.metrics}
        for j, path in enumerate(batch["path"]):
            name = Path(path).stem
            row: dict[str, Any] = {"name": name, **{k: float(v[j]) for k, v in scores.items()}}
            images = {"input": batch["a"][j]}
            if base is not None:
                row["baseline"] = {k: float(v[j]) for k, v in base_scores.items()}
                images[protocol.baseline_name] = base[j]
            images.update(output=fake[j], target=real[j])
            if out and save_images:
                for kind, t in images.items():
                    save_image(t, out / "images" / f"{name}_{kind}.png")
            rows.append(row)
        if on_batch:
            on_batch(len(batch["path"]))
    names = [m.name for m in protocol.metrics]
    summary: dict[str, Any] = {
        "count": len(rows),
        "mean": {k: _mean([r[k] for r in rows]) for k in names},
        "images": rows,
        "checkpoint_step": translator.step,
        "direction": translator.direction or translator.config.data.direction,
    }
    if protocol.note:
        summary["protocol"] = protocol.note
    if protocol.baseline is not None:
        summary["baseline"] = {
            "name": protocol.baseline_name,
            "mean": {k: _mean([r["baseline"][k] for r in rows]) for k in names},
        }
    if out:
        (out / "metrics.json").write_text(json.dumps(summary, indent=2))
        (out / "index.html").write_text(render_html(summary, save_images, protocol))
    return summary


def summary_lines(summary: dict[str, Any], protocol: EvalProtocol = PAIRED_RGB) -> list[str]:
    """The mean metrics (and the baseline's) as lines for a console."""

    def means(m: dict[str, float]) -> str:
        return "  ".join(f"{x.label} {x.format(m[x.name])}" for x in protocol.metrics)

    lines = [f"{summary['count']} images: {means(summary['mean'])}"]
    if "baseline" in summary:
        b = summary["baseline"]
        width = len(f"{summary['count']} images")
        lines.append(f"{b['name']:>{width}}: {means(b['mean'])}")
    if protocol.note:
        lines.append(f"({protocol.note})")
    return lines


def _mean(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).mean()) if values else math.nan


def render_html(
    summary: dict[str, Any], with_images: bool = True, protocol: EvalProtocol = PAIRED_RGB
) -> str:
    """A self-contained page: mean metrics and one row per image (input | output | target)."""
    ms = protocol.metrics
    base = summary.get("baseline")
    kinds = ["input", *([base["name"]] if base else []), "output", "target"]

    def means(m: dict[str, float]) -> str:
        return " &middot; ".join(f"{x.label} {x.format(m[x.name])}" for x in ms)

    head = (
        "<!doctype html><meta charset='utf-8'><title>pixmorph evaluation</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;text-align:right}"
        "img{width:160px;image-rendering:pixelated}</style>"
        f"<h1>pixmorph evaluation</h1><p>{summary['count']} images, step "
        f"{summary['checkpoint_step']}, direction {html.escape(str(summary['direction']))}</p>"
        f"<p>mean {means(summary['mean'])}</p>"
        + (f"<p>{html.escape(base['name'])}: {means(base['mean'])}</p>" if base else "")
        + (f"<p>{html.escape(protocol.note)}</p>" if protocol.note else "")
        + "<table><tr><th>name</th>"
        + "".join(f"<th>{x.label}</th>" for x in ms)
        + ("".join(f"<th>{html.escape(base['name'])} {x.label}</th>" for x in ms) if base else "")
        + ("".join(f"<th>{html.escape(k)}</th>" for k in kinds) if with_images else "")
        + "</tr>"
    )
    rows = []
    for r in summary["images"]:
        name = html.escape(r["name"])
        cells = f"<td>{name}</td>" + "".join(
            f"<td>{x.format(r[x.name], unit=False)}</td>" for x in ms
        )
        if base:
            cells += "".join(f"<td>{x.format(r['baseline'][x.name], unit=False)}</td>" for x in ms)
        if with_images:
            cells += "".join(
                f"<td><img src='images/{name}_{html.escape(k)}.png' alt='{html.escape(k)}'></td>"
                for k in kinds
            )
        rows.append(f"<tr>{cells}</tr>")
    return head + "".join(rows) + "</table>\n"
