"""The report of what a tool wrote and what it skipped, and the progress hook tools accept."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Track = Callable[[Sequence[T]], Iterable[T]]  # wraps a work list, e.g. in a progress bar
SHOWN = 5  # names listed per skip reason


def untracked(items: Sequence[T]) -> Iterable[T]:
    """The default Track: no progress display."""
    return items


@dataclass
class Report:
    """What a tool wrote (counts per output folder) and what it skipped, by reason."""

    tool: str
    out: Path
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def wrote(self, folder: str, n: int = 1) -> None:
        self.written[folder] = self.written.get(folder, 0) + n

    def skip(self, reason: str, name: str | Path) -> None:
        self.skipped.setdefault(reason, []).append(str(name))

    @property
    def total_written(self) -> int:
        return sum(self.written.values())

    @property
    def total_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def lines(self) -> list[str]:
        """A human summary: counts, then each skip reason with its first few names."""
        per = ", ".join(f"{k}: {v}" for k, v in self.written.items() if k)
        out = [
            f"{self.tool}: wrote {self.total_written} file(s) to {self.out}"
            + (f" ({per})" if per else "")
        ]
        if self.skipped:
            out.append(f"skipped {self.total_skipped}:")
        for reason, names in self.skipped.items():
            more = f" ... (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
            out.append(f"  {reason} ({len(names)}): {', '.join(names[:SHOWN])}{more}")
        out.extend(f"note: {n}" for n in self.notes)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "out": str(self.out),
            "written": self.written,
            "skipped": self.skipped,
            "notes": self.notes,
        }
