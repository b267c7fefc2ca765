"""What the dataset tool commands share: output options, a progress bar, the printed report."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from pixmorph.commands.console import bar
from pixmorph.data.tools.outcome import Report, Track

T = TypeVar("T")


def tool_parser(tools: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A tool's subparser that shows defaults in its help."""
    return tools.add_parser(
        name, help=summary, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    """--format and --overwrite, shared by every tool that writes a dataset."""
    p.add_argument("--format", choices=["png", "jpg"], default="png", help="output file format")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty output folder, replacing the images of an earlier run",
    )


def progress(desc: str) -> Track:
    """A Track that shows a progress bar on stderr while the work list is consumed."""

    def track(items: Sequence[T]) -> Iterable[T]:
        def run() -> Iterator[T]:
            with bar(len(items), desc, unit="file") as b:
                for item in items:
                    yield item
                    b.update()

        return run()

    return track


def print_report(report: Report) -> int:
    """Print what was written and skipped; exit code 0 (skips are reported, not failures)."""
    for line in report.lines():
        print(line)
    return 0
