"""`pixmorph data split IN OUT`: cut aligned A|B files into OUT/A and OUT/B."""

from __future__ import annotations

import argparse
from typing import Any

from pixmorph.commands.data_tools.common import (
    add_output_options,
    print_report,
    progress,
    tool_parser,
)
from pixmorph.data.tools.pairs import split


def add_parser(tools: Any) -> None:
    p = tool_parser(tools, "split", "cut aligned A|B files into OUT/A and OUT/B")
    p.add_argument("input", metavar="IN", help="folder of aligned files (or with train/ test/)")
    p.add_argument("out", metavar="OUT", help="new folder; gets A/ and B/")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = split(
        args.input, args.out, fmt=args.format, overwrite=args.overwrite, track=progress("split")
    )
    return print_report(report)
