"""`pixmorph data check DIR`: a table of what a dataset holds; exit 1 when something is wrong."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pixmorph.commands.data_tools.common import progress, tool_parser
from pixmorph.data.tools.check import MODES, check

EXIT_PROBLEMS = 1


def add_parser(tools: Any) -> None:
    p = tool_parser(
        tools, "check", "counts, sizes, modes, bit depths and problems of a dataset folder"
    )
    p.add_argument("root", metavar="DIR", help="dataset folder")
    p.add_argument("--mode", choices=MODES, default="aligned", help="the layout DIR should have")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = check(args.root, args.mode, track=progress("check"))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(result.table()))
    return 0 if result.ok else EXIT_PROBLEMS
