"""Quality against CPU minutes: every saved snapshot of one or more runs, scored on held-out data.

python benchmarks/quality_curves.py RUN [RUN ...] --data HELD_OUT [--kid] [--out DIR]

Each run's checkpoints (checkpoints/step_*.pt, kept with train.keep_checkpoints, and latest.pt)
are scored on the paired folder HELD_OUT with the figures `pixmorph evaluate` gives (PSNR,
SSIM, L1 and the method's own, e.g. Y-channel PSNR for super-resolution) and, with --kid, the
Kernel Inception Distance of the translations against the held-out targets (needs the Inception
weights, see docs/evaluation.md). The x axis is the run's own wall clock when the snapshot was
written (`clock.elapsed_s` in the checkpoint: building, data and evaluation included).
Prints a Markdown table per run, flushed as each snapshot is scored, and writes curves.csv and
one PNG per figure (all runs on one plot) into --out. `--points N` scores N snapshots per run,
spread over its steps (the last always among them); `--grid N` writes grid.png: the first N
held-out inputs, each run's last snapshot's translation, and the target, one row per image.
`--ensemble 8` scores the geometric self-ensemble, as `pixmorph evaluate --ensemble 8` does.
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from functools import partial
from pathlib import Path

import torch
from measure import line_buffered, machine_line

from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.inception_weights import build_feature_net
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.evaluation.plot import line_plot
from pixmorph.inference.loading import load_generator
from pixmorph.inference.translator import ENSEMBLES, translate
from pixmorph.methods.registry import get_method
from pixmorph.training.samples import save_grid


def snapshots(run: Path) -> list[tuple[int, float, Path]]:
    """(step, elapsed minutes, file) of every checkpoint of a run, by step, one per step."""
    found: dict[int, tuple[float, Path]] = {}
    folder = run / "checkpoints"
    files = sorted(folder.glob("step_*.pt")) + [folder / "latest.pt"]
    for f in files:
        if not f.is_file():
            continue
        ckpt = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        elapsed = float((ckpt.get("clock") or {}).get("elapsed_s", float("nan")))
        found.setdefault(int(ckpt["step"]), (elapsed / 60.0, f))
    return [(step, minutes, f) for step, (minutes, f) in sorted(found.items())]


def spread(items: list, points: int) -> list:
    """At most `points` items, evenly spaced, the last always kept."""
    if points <= 0 or len(items) <= points:
        return items
    picks = (
        {round(i * (len(items) - 1) / (points - 1)) for i in range(points)} if points > 1 else set()
    )
    return [items[i] for i in sorted(picks | {len(items) - 1})]


def write_grid(files: dict[str, Path], data: str, count: int, path: Path) -> None:
    """input | each run's translation | target, for the first `count` held-out images."""
    translators = {name: load_generator(str(f), device="cpu") for name, f in files.items()}
    first = next(iter(translators.values()))
    dataset = get_method(first.config.method).make_dataset(first.config, train=False, root=data)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    # images of different sizes: the top-left region all of them have (LR and HR alike)
    h = min(item["a"].shape[1] for item in items)
    w = min(item["a"].shape[2] for item in items)
    inputs = torch.stack([item["a"][:, :h, :w] for item in items])
    panel = {"input": inputs}
    for name, translator in translators.items():
        panel[name] = translate(translator, inputs).float().clamp(-1, 1)
    th, tw = panel[name].shape[2:]
    panel["target"] = torch.stack([item["b"][:, :th, :tw] for item in items])
    save_grid([panel], path)


def score(file: Path, data: str, realism: Realism | None, ensemble: int = 1) -> dict[str, float]:
    """Mean held-out figures of one checkpoint (and KID), as `pixmorph evaluate` computes them."""
    translator = load_generator(str(file), device="cpu")
    translator.ensemble = ensemble
    cfg = translator.config
    method_cls = get_method(cfg.method)
    dataset = method_cls.make_dataset(cfg, train=False, root=data)
    summary = evaluate_paired(
        translator,
        dataset,
        save_images=False,
        realism=realism,
        extra_metrics=partial(method_cls.eval_metrics, cfg),
    )
    figures = dict(summary["mean"])
    if summary.get("realism"):
        figures["kid"] = summary["realism"]["kid"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="paired held-out folder (or root)")
    parser.add_argument("--kid", action="store_true", help="add KID (Inception weights needed)")
    parser.add_argument("--inception-weights", help="path to the weights (default: as evaluate)")
    parser.add_argument("--out", type=Path, default=Path("quality_curves"))
    parser.add_argument("--names", help="comma list of labels for the runs (default: folder names)")
    parser.add_argument("--points", type=int, default=0, help="snapshots scored per run (0: all)")
    parser.add_argument("--grid", type=int, default=0, help="held-out images in grid.png (0: none)")
    parser.add_argument(
        "--ensemble", type=int, default=1, choices=ENSEMBLES, help="as `pixmorph evaluate`"
    )
    args = parser.parse_args()
    line_buffered()
    print(machine_line())
    names = args.names.split(",") if args.names else [r.name for r in args.runs]
    if len(names) != len(args.runs):
        parser.error(f"--names has {len(names)} labels for {len(args.runs)} runs")
    realism = None
    if args.kid:
        net = build_feature_net("inception", args.inception_weights, "cpu")
        # few held-out images: one KID over all of them (subset size = their count)
        realism = Realism(net, fid=False, kid=True, kid_subsets=100, kid_subset_size=1000)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float | str]] = []
    last: dict[str, Path] = {}
    for name, run in zip(names, args.runs, strict=True):
        print(f"\n{name} ({run})")
        keys: list[str] = []
        found = snapshots(run)
        if not found:
            parser.error(f"{run}: no checkpoints/step_*.pt or latest.pt")
        last[name] = found[-1][2]
        for step, minutes, file in spread(found, args.points):
            t0 = time.perf_counter()
            figures = score(file, args.data, realism, args.ensemble)
            if not keys:
                keys = [k for k in figures if k != "count"]
                print("| minutes | step | " + " | ".join(keys) + " |")
                print("|---|---|" + "---|" * len(keys))
            cells = " | ".join(f"{figures[k]:.4f}" for k in keys)
            print(f"| {minutes:.1f} | {step} | {cells} |  ({time.perf_counter() - t0:.0f} s)")
            rows.append({"run": name, "step": step, "minutes": minutes, **figures})
    with (args.out / "curves.csv").open("w", newline="") as f:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    metrics = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in
               ("run", "step", "minutes", "count")]  # fmt: skip
    for metric in metrics:
        series = {
            name: (
                [float(r["minutes"]) for r in rows if r["run"] == name and metric in r],
                [float(r[metric]) for r in rows if r["run"] == name and metric in r],
            )
            for name in names
        }
        safe = re.sub(r"[^a-z0-9_]+", "_", metric.lower())
        line_plot(series, args.out / f"{safe}.png", title=metric, x_label="CPU minutes")
    print(f"\nwrote {args.out / 'curves.csv'} and {len(metrics)} plots")
    if args.grid:
        write_grid(last, args.data, args.grid, args.out / "grid.png")
        print(f"wrote {args.out / 'grid.png'}")


if __name__ == "__main__":
    main()
