"""`pixmorph data colorize IN OUT`: greyscale|colour pairs from colour photos (A = grey)."""

from __future__ import annotations

import argparse
from typing import Any

from pixmorph.commands.data_tools.common import (
    add_output_options,
    print_report,
    progress,
    tool_parser,
)
from pixmorph.data.tools.colorize import colorize


def add_parser(tools: Any) -> None:
    p = tool_parser(tools, "colorize", "grey|colour pairs from colour photos (greyscale skipped)")
    p.add_argument("input", metavar="IN", help="folder of colour photos (or with train/ test/)")
    p.add_argument("out", metavar="OUT", help="new folder for the aligned grey|colour files")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = colorize(
        args.input,
        args.out,
        fmt=args.format,
        overwrite=args.overwrite,
        track=progress("colorize"),
    )
    return print_report(report)
