"""The layout of a run folder: config, metrics log, samples and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunDir:
    """Paths inside one run folder, and the append-only metrics log."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.metrics = self.root / "metrics.jsonl"
        self.samples = self.root / "samples"
        self.checkpoints = self.root / "checkpoints"
        self.latest = self.checkpoints / "latest.pt"
        self.best = self.checkpoints / "best.pt"  # kept by train.best_metric

    def create(self) -> None:
        """Make the folders."""
        for d in (self.root, self.samples, self.checkpoints):
            d.mkdir(parents=True, exist_ok=True)

    def step_checkpoint(self, step: int) -> Path:
        """The path of the checkpoint kept for a step."""
        return self.checkpoints / f"step_{step:08d}.pt"

    def step_checkpoints(self) -> list[Path]:
        """Per-step checkpoints, oldest first."""
        return sorted(self.checkpoints.glob("step_*.pt"))

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl."""
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """All records of metrics.jsonl (skipping a torn last line)."""
        if not self.metrics.exists():
            return []
        out = []
        for line in self.metrics.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past `after_step` (work lost since the checkpoint a resume starts from)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        self.metrics.write_text("".join(json.dumps(r) + "\n" for r in kept))


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a record other than the step."""
    return {
        k: float(v)
        for k, v in record.items()
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }


def tag(name: str) -> str:
    """A TensorBoard tag that groups related curves: loss/, eval/, lr/, speed/."""
    if name.startswith("eval_"):
        return "eval/" + name.removeprefix("eval_")
    if name.startswith("lr_"):
        return "lr/" + name.removeprefix("lr_")
    if name in ("images_per_s", "elapsed_s"):
        return "speed/" + name
    return "loss/" + name
