"""Wall-clock time of a run (carried across resumes) and the optional time budget it trains for.

With `train.time_budget` (minutes) the run trains until the time is spent rather than for a step
count. The LR schedule is laid over the budget: its progress is the fraction of the budget that
will have passed once the next step ends, so the decay reaches zero exactly when the loop stops.
The step time is measured from the first steps and re-estimated as the run goes (an average of
recent steps), so a machine that slows down or speeds up moves the end of the schedule with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# weight of the newest step in the running step-time estimate: recent steps matter most, yet a
# single slow step (an evaluation, a checkpoint) moves the estimate only a little
_STEP_TIME_WEIGHT = 0.2


class RunClock:
    """Seconds of training so far and, with a budget, how much of it is spent."""

    def __init__(
        self, budget_s: float = 0.0, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.budget_s = budget_s
        self._clock = clock
        self._before = 0.0  # seconds spent by earlier sessions of the run (resumes)
        self._started: float | None = None
        self._last_tick: float | None = None
        self.step_s: float | None = None  # running estimate of one step's wall time

    @property
    def budgeted(self) -> bool:
        return self.budget_s > 0

    def start(self) -> None:
        """Start (or restart, in a resumed session) counting."""
        self._started = self._clock()
        self._last_tick = None  # the first step's interval would include building and data

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        if self._started is None:
            return self._before
        return self._before + self._clock() - self._started

    def tick(self) -> None:
        """Mark the end of a step: update the step-time estimate."""
        now = self._clock()
        if self._last_tick is not None:  # from the second step on
            dt = now - self._last_tick
            w = _STEP_TIME_WEIGHT
            self.step_s = dt if self.step_s is None else (1 - w) * self.step_s + w * dt
        self._last_tick = now

    def progress(self) -> float:
        """Fraction of the budget spent once the next step ends, in [0, 1] (0 without budget)."""
        if not self.budgeted:
            return 0.0
        return min(1.0, (self.elapsed() + (self.step_s or 0.0)) / self.budget_s)

    def done(self) -> bool:
        """Whether another step would overrun the budget."""
        return self.budgeted and self.progress() >= 1.0

    def estimated_total(self, step: int) -> int:
        """The step count the run will likely end at (for progress bars)."""
        if not self.budgeted or not self.step_s:
            return step
        left = max(0.0, self.budget_s - self.elapsed())
        return step + int(left / self.step_s)

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_s": self.elapsed(), "budget_s": self.budget_s}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from a checkpoint's elapsed time (an older checkpoint: from zero)."""
        self._before = float((state or {}).get("elapsed_s", 0.0))


def budget_decay(progress: Callable[[], float], decay_start: float) -> Callable[[int], float]:
    """LR factor over the time budget: 1 until `decay_start` of it, then linearly down to 0.

    The factor reads the clock, not the step number LambdaLR passes.
    """
    span = max(1e-9, 1.0 - decay_start)

    def factor(step: int) -> float:
        p = progress()
        return 1.0 if p < decay_start else max(0.0, 1.0 - (p - decay_start) / span)

    return factor
