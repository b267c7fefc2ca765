"""`pixmorph report`: one HTML page summarising a run folder."""

from __future__ import annotations

import argparse
from typing import Any

from pixmorph.evaluation.run_report import build_report


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="HTML page of a run: loss and metric curves, samples, numbers, config",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holding config.yaml)")
    p.add_argument("--samples", type=int, default=12, help="sample grids shown, spread over time")
    p.add_argument("--embed", action="store_true", help="inline all images: one portable file")
    p.add_argument(
        "--out", help="page path (default: RUN_DIR/report.html; elsewhere implies --embed)"
    )
    p.add_argument(
        "--x",
        choices=["step", "time"],
        default="step",
        help="plot curves against steps or minutes of training (time: runs logging elapsed_s)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    page = build_report(args.run_dir, args.samples, args.embed, args.out, args.x)
    print(f"report: {page}")
    return 0
