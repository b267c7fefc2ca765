"""Console output the CLI owns: logging through tqdm, progress bars."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # never let logging break a run
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Route pixmorph's log records to stderr without breaking progress bars."""
    root = logging.getLogger("pixmorph")
    root.handlers.clear()
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


class TrainProgress:
    """A progress bar over training steps showing losses, images/s and ETA."""

    def __init__(self, start: int, total: int, enabled: bool = True) -> None:
        self.bar = tqdm(
            total=total,
            initial=start,
            desc="train",
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def __call__(self, step: int, total: int, losses: dict[str, float], ips: float) -> None:
        self.bar.total = total
        self.bar.update(step - self.bar.n)
        shown = {k: f"{v:.3f}" for k, v in losses.items()}
        self.bar.set_postfix(shown | {"img/s": f"{ips:.1f}"}, refresh=False)

    def close(self) -> None:
        self.bar.close()


def bar(total: int, desc: str, unit: str = "img") -> tqdm:
    """A plain progress bar on stderr."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
