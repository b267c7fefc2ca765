"""`pixmorph data unpair IN OUT`: aligned files -> shuffled trainA/ trainB/ (CycleGAN layout)."""

from __future__ import annotations

import argparse
from typing import Any

from pixmorph.commands.data_tools.common import (
    add_output_options,
    print_report,
    progress,
    tool_parser,
)
from pixmorph.data.tools.unpair import unpair


def add_parser(tools: Any) -> None:
    p = tool_parser(
        tools, "unpair", "aligned A|B files -> shuffled trainA/ trainB/, test/ kept paired"
    )
    p.add_argument("input", metavar="IN", help="aligned folder, or one with train/ (and test/)")
    p.add_argument(
        "out", metavar="OUT", help="new folder for trainA/ trainB/ (testA/ testB/ test/)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the two shuffles")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = unpair(
        args.input,
        args.out,
        seed=args.seed,
        fmt=args.format,
        overwrite=args.overwrite,
        track=progress("unpair"),
    )
    return print_report(report)
