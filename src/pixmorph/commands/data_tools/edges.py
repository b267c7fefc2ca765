"""`pixmorph data edges IN OUT`: an edges -> photo paired set from photos (A = edges)."""

from __future__ import annotations

import argparse
from typing import Any

from pixmorph.commands.data_tools.common import (
    add_output_options,
    print_report,
    progress,
    tool_parser,
)
from pixmorph.data.tools.edges import edges


def add_parser(tools: Any) -> None:
    p = tool_parser(
        tools, "edges", "edges -> photo pairs from photos: A = Canny edges (black on white)"
    )
    p.add_argument("input", metavar="IN", help="folder of photos (or with train/ test/)")
    p.add_argument("out", metavar="OUT", help="new folder for the aligned edges|photo files")
    p.add_argument(
        "--sigma", type=float, default=2.0, help="Gaussian blur in pixels (more: fewer, smoother)"
    )
    p.add_argument(
        "--high",
        type=float,
        default=0.35,
        help="share (0-1] of the thinned gradient maxima that seed edges (more: more edges)",
    )
    p.add_argument(
        "--low",
        type=float,
        default=0.4,
        help="edges extend down to this fraction of the seed level",
    )
    p.add_argument("--white-on-black", action="store_true", help="white edges on black")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = edges(
        args.input,
        args.out,
        sigma=args.sigma,
        high=args.high,
        low=args.low,
        white_on_black=args.white_on_black,
        fmt=args.format,
        overwrite=args.overwrite,
        track=progress("edges"),
    )
    return print_report(report)
