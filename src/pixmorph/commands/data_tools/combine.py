"""`pixmorph data combine A_DIR B_DIR OUT`: pair A/x and B/x into aligned A|B files."""

from __future__ import annotations

import argparse
from typing import Any

from pixmorph.commands.data_tools.common import (
    add_output_options,
    print_report,
    progress,
    tool_parser,
)
from pixmorph.data.tools.pairs import combine


def add_parser(tools: Any) -> None:
    p = tool_parser(tools, "combine", "pair A_DIR/x and B_DIR/x by name into aligned A|B files")
    p.add_argument("a_dir", metavar="A_DIR", help="folder of A images (left halves)")
    p.add_argument("b_dir", metavar="B_DIR", help="folder of B images (right halves), same names")
    p.add_argument("out", metavar="OUT", help="new folder for the aligned files")
    p.add_argument(
        "--resize",
        choices=["none", "bicubic", "nearest"],
        default="none",
        help="bring B to A's size when they differ (nearest for label maps); none skips them",
    )
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = combine(
        args.a_dir,
        args.b_dir,
        args.out,
        resize=args.resize,
        fmt=args.format,
        overwrite=args.overwrite,
        track=progress("combine"),
    )
    return print_report(report)
