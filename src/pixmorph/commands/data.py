"""`pixmorph data ...`: dataset tools."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.commands.data_tools import TOOLS
from pixmorph.data import synth
from pixmorph.errors import ConfigError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("data", help="dataset tools (synth, ...)")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    s = tools.add_parser(
        "synth",
        help="write a deterministic built-in dataset (no download needed)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument("--out", required=True, help="output folder (gets train/ and test/)")
    s.add_argument("--n", type=int, default=200, help="number of images")
    s.add_argument("--size", type=int, default=256, help="image side")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--test-fraction", type=float, default=0.1)
    kind = s.add_mutually_exclusive_group()
    kind.add_argument(
        "--unpaired",
        action="store_true",
        help="trainA/ trainB/ shuffled apart, paired test split for evaluation",
    )
    kind.add_argument(
        "--hr", action="store_true", help="single detail-rich images, for super-resolution"
    )
    s.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    s.set_defaults(run=run_synth)
    for tool in TOOLS:
        tool.add_parser(tools)


def run_synth(args: argparse.Namespace) -> int:
    if args.n < 2 or args.size < 16:
        raise ConfigError("--n must be at least 2 and --size at least 16")
    write = (
        synth.write_unpaired if args.unpaired else synth.write_hr if args.hr else synth.write_paired
    )
    summary = write(
        Path(args.out),
        n=args.n,
        size=args.size,
        seed=args.seed,
        test_fraction=args.test_fraction,
        overwrite=args.overwrite,
    )
    print(f"{summary['layout']} dataset: {summary['root']}")
    return 0
