"""`report.html` of a run: curves, sample grids over time, final numbers and the resolved config."""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from pixmorph.errors import ConfigError
from pixmorph.evaluation.plot import line_plot
from pixmorph.metrics import HIGHER_IS_BETTER
from pixmorph.run_folder import RunDir, scalars, tag

REPORT_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:1400px}h2{margin-top:1.6em}"
    "td,th{padding:3px 10px;text-align:right}th{background:#eee}td:first-child{text-align:left}"
    ".grid{display:flex;flex-wrap:wrap;gap:10px}.grid figure{margin:0}"
    "figcaption{font-size:90%;color:#555}pre{background:#f6f6f6;padding:1em;overflow:auto}"
    ".samples img{max-width:100%;image-rendering:pixelated}"
)
GROUPS = (
    ("loss", "Losses", "what each network minimises; see docs/evaluation.md on reading them"),
    ("eval", "Held-out metrics", "train.eval_every on the evaluation split"),
    ("lr", "Learning rates", ""),
    ("speed", "Speed", "images per second"),
)


# what curves can be plotted against: the record key and the axis label
X_AXES = {"step": ("step", "step"), "time": ("elapsed_s", "minutes")}


def _series(
    records: list[dict[str, Any]], x: str = "step"
) -> dict[str, tuple[list[float], list[float]]]:
    """Per name, the x values (steps, or minutes of training) and values it was logged at."""
    key = X_AXES[x][0]
    scale = 1 / 60 if x == "time" else 1.0
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in records:
        if key not in r:  # records of runs from before elapsed_s was logged have no time
            continue
        for k, v in scalars(r).items():
            if k == key:
                continue
            xs, ys = out.setdefault(k, ([], []))
            xs.append(float(r[key]) * scale)
            ys.append(v)
    return out


def smoothing(n: int) -> float:
    """EMA weight for n noisy points: none for a few, about a 1/15 window for many."""
    return 0.0 if n <= 15 else min(0.95, 1.0 - 15.0 / n)


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "&ndash;"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


def summary_rows(series: dict[str, tuple[list[float], list[float]]]) -> list[dict[str, Any]]:
    """For each name: last value, mean of the last 10% of records, min, max, and the best."""
    rows = []
    for name, (xs, ys) in series.items():
        finite = [y for y in ys if math.isfinite(y)]
        tail = ys[-max(1, len(ys) // 10) :]
        row: dict[str, Any] = {
            "name": name,
            "last": ys[-1],
            "last_step": int(xs[-1]),
            "tail_mean": sum(tail) / len(tail),
            "min": min(finite) if finite else None,
            "max": max(finite) if finite else None,
            "best": None,
        }
        metric = name.removeprefix("eval_")
        if name.startswith("eval_") and metric in HIGHER_IS_BETTER and finite:
            pick = max if HIGHER_IS_BETTER[metric] else min
            i = ys.index(pick(finite))
            row["best"] = (ys[i], int(xs[i]))
        rows.append(row)
    return rows


class _Images:
    """How the page refers to image files: relative paths, or inline data (--embed)."""

    def __init__(self, root: Path, embed: bool) -> None:
        self.root, self.embed = root, embed

    def src(self, path: Path) -> str:
        if self.embed:
            return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
        return html.escape(path.relative_to(self.root).as_posix())


def _plots(series: dict, plot_dir: Path, images: _Images, x_label: str = "step") -> str:
    parts = []
    for group, heading, note in GROUPS:
        names = [k for k in series if tag(k).startswith(group + "/")]
        if not names:
            continue
        figures = []
        shared = group in ("lr",)  # learning rates share a scale: one plot
        batches = [names] if shared else [[k] for k in names]
        for batch in batches:
            title = heading if shared else batch[0]
            n = max(len(series[k][0]) for k in batch)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", "_".join(batch))[:80]
            png = line_plot(
                {k: series[k] for k in batch},
                plot_dir / f"{group}_{safe}.png",
                title=title,
                smooth=smoothing(n) if group in ("loss", "speed") else 0.0,
                x_label=x_label,
            )
            figures.append(
                f"<figure><img src='{images.src(png)}' alt='{html.escape(title)}'></figure>"
            )
        parts.append(
            f"<h2>{heading}</h2>"
            + (f"<p>{html.escape(note)}</p>" if note else "")
            + f"<div class='grid'>{''.join(figures)}</div>"
        )
    return "".join(parts)


def pick_samples(files: list[Path], limit: int) -> list[Path]:
    """At most `limit` files spread evenly over the run, always with the first and the last."""
    if limit <= 0 or len(files) <= limit:
        return files
    if limit == 1:
        return files[-1:]
    idx = sorted({round(i * (len(files) - 1) / (limit - 1)) for i in range(limit)})
    return [files[i] for i in idx]


def _evaluations(run: RunDir) -> str:
    """Table of `pixmorph evaluate` results stored in RUN/eval_*/metrics.json."""
    rows = []
    for path in sorted(run.root.glob("eval_*/metrics.json")):
        try:
            s = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        mean = s.get("mean", {})
        r = s.get("realism", {})
        link = html.escape((path.parent / "index.html").relative_to(run.root).as_posix())
        rows.append(
            f"<tr><td><a href='{link}'>{html.escape(path.parent.name)}</a></td>"
            f"<td>{html.escape(str(s.get('mode', 'paired')))}</td><td>{s.get('count', '')}</td>"
            f"<td>{s.get('checkpoint_step', '')}</td>"
            + "".join(f"<td>{_fmt(mean.get(k))}</td>" for k in ("l1", "psnr", "ssim"))
            + f"<td>{_fmt(r.get('fid'))}</td><td>{_fmt(r.get('kid'))}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<h2>Evaluations</h2><table><tr><th>report</th><th>mode</th><th>images</th>"
        "<th>step</th><th>L1</th><th>PSNR</th><th>SSIM</th><th>FID</th><th>KID</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def build_report(
    run_dir: str | Path,
    max_samples: int = 12,
    embed: bool = False,
    out: str | Path | None = None,
    x: str = "step",
) -> Path:
    """Write RUN/report.html (plots in RUN/report/) and return its path.

    `x`: plot the curves against "step" or "time" (minutes of training, from elapsed_s).

    The page refers to images by paths relative to the run folder; with `embed` (implied by an
    `out` outside the run folder) they are inlined, so the one file can be sent on its own.
    """
    run = RunDir(run_dir)
    target = Path(out) if out else run.root / "report.html"
    embed = embed or target.resolve().parent != run.root.resolve()
    if not run.config.is_file():
        raise ConfigError(f"{run.root} is not a run folder: it has no config.yaml")
    config_text = run.config.read_text()
    cfg = yaml.safe_load(config_text) or {}
    records = run.read_metrics()
    if x not in X_AXES:
        raise ConfigError(f"report x axis {x!r}: one of {', '.join(X_AXES)}")
    series = _series(records)
    plotted = series if x == "step" else _series(records, x)
    plot_dir = run.root / "report"
    plot_dir.mkdir(exist_ok=True)
    images = _Images(run.root, embed)

    last_step = max((int(r["step"]) for r in records if "step" in r), default=0)
    total = cfg.get("train", {}).get("steps", "?")
    best_metric = cfg.get("train", {}).get("best_metric", "none")
    ckpts = sorted(p.name for p in run.checkpoints.glob("*.pt")) if run.checkpoints.is_dir() else []

    rows = summary_rows(series)
    table = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{_fmt(r['last'])}</td>"
        f"<td>{r['last_step']}</td><td>{_fmt(r['tail_mean'])}</td><td>{_fmt(r['min'])}</td>"
        f"<td>{_fmt(r['max'])}</td><td>"
        + (f"{_fmt(r['best'][0])} @ {r['best'][1]}" if r["best"] else "")
        + "</td></tr>"
        for r in rows
    )
    samples = pick_samples(sorted(run.samples.glob("step_*.png")), max_samples)
    sample_html = "".join(
        f"<figure><figcaption>step {int(p.stem.removeprefix('step_'))}</figcaption>"
        f"<img src='{images.src(p)}' alt='{p.stem}'></figure>"
        for p in samples
    )
    page = (
        f"<!doctype html><meta charset='utf-8'><title>pixmorph run {html.escape(run.root.name)}"
        f"</title><style>{REPORT_STYLE}</style>"
        f"<h1>Run {html.escape(run.root.name)}</h1>"
        f"<p>method <b>{html.escape(str(cfg.get('method', '?')))}</b> &middot; logged up to step "
        f"{last_step} of {total} &middot; best checkpoint by {html.escape(str(best_metric))}"
        f"{' (checkpoints/best.pt)' if 'best.pt' in ckpts else ''} &middot; checkpoints: "
        f"{html.escape(', '.join(ckpts) or 'none')}</p>"
        "<h2>Final numbers</h2><p>last: the last logged value; tail mean: the mean over the "
        "last 10% of records (GAN losses are noisy, so read this one); best: held-out metrics "
        "only.</p><table><tr><th>name</th><th>last</th><th>at step</th><th>tail mean</th>"
        f"<th>min</th><th>max</th><th>best</th></tr>{table}</table>"
        + _evaluations(run)
        + _plots(plotted, plot_dir, images, X_AXES[x][1])
        + (
            f"<h2>Samples over time</h2><div class='samples grid'>{sample_html}</div>"
            if samples
            else ""
        )
        + f"<h2>Resolved config</h2><pre>{html.escape(config_text)}</pre>\n"
    )
    target.write_text(page)
    return target
