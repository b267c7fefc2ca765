"""Quality against CPU minutes: every saved snapshot of one or more runs, scored on held-out data.

python benchmarks/quality_curves.py RUN [RUN ...] --data HELD_OUT [--kid] [--out DIR]

Each run's checkpoints (checkpoints/step_*.pt, kept with train.keep_checkpoints, and latest.pt)
are scored on the paired folder HELD_OUT with the figures `pixmorph evaluate` gives (PSNR,
SSIM, L1 and the method's own, e.g. Y-channel PSNR for super-resolution) and, with --kid, the
Kernel Inception Distance of the translations against the held-out targets (needs the Inception
weights, see docs/evaluation.md). The x axis is the run's own wall clock when the snapshot was
written (`clock.elapsed_s` in the checkpoint: building, data and evaluation included).
Prints a Markdown table per run, flushed as each snapshot is scored, and writes curves.csv and
one PNG per figure (all runs on one plot) into --out.
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
from pixmorph.methods.registry import get_method


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


def score(file: Path, data: str, realism: Realism | None) -> dict[str, float]:
    """Mean held-out figures of one checkpoint (and KID), as `pixmorph evaluate` computes them."""
    translator = load_generator(str(file), device="cpu")
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
    for name, run in zip(names, args.runs, strict=True):
        print(f"\n{name} ({run})")
        keys: list[str] = []
        for step, minutes, file in snapshots(run):
            t0 = time.perf_counter()
            figures = score(file, args.data, realism)
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


if __name__ == "__main__":
    main()
