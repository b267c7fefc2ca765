"""NaN/Inf watch: losses every step, weights before every save, and the LR cut of a rollback."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from pixmorph.checkpoint import load_checkpoint

log = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """A loss or a weight became NaN or Inf: training diverged."""

    def __init__(self, step: int, what: str, value: float, lr: float | None = None) -> None:
        lr_text = f" (train.lr is {lr:g})" if lr is not None else ""
        super().__init__(
            f"training diverged at step {step}: {what} is {value}{lr_text}; lower train.lr, "
            "or set train.on_nonfinite=rollback to go back to the last checkpoint with a lower LR"
        )
        self.step, self.what, self.value = step, what, value


def check_losses(
    losses: Mapping[str, float], step: int, lr: float | None = None, across_ranks: bool = False
) -> None:
    """Raise NonFiniteError naming the first loss that is NaN or Inf.

    across_ranks: in a parallel job every process raises when any one sees a bad loss, so they
    stop (or roll back) together instead of waiting for each other.
    """
    bad = next(
        (
            (name, float(v))
            for name, v in losses.items()
            if isinstance(v, int | float) and not math.isfinite(v)
        ),
        None,
    )
    if across_ranks:
        flag = torch.tensor([0.0 if bad is None else 1.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if bad is None and flag.item() > 0:
            bad = ("on another process", math.nan)
    if bad is not None:
        raise NonFiniteError(step, f"loss {bad[0]!r}", bad[1], lr)


def first_nonfinite(state: Mapping[str, Any]) -> tuple[str, float] | None:
    """The name and a bad value of the first floating tensor holding NaN or Inf, if any."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                return name, float(t[bad].flatten()[0])
    return None


def check_weights(state: Mapping[str, Any], step: int, lr: float | None = None) -> None:
    """Raise NonFiniteError if a parameter or buffer of a state dict is NaN or Inf."""
    found = first_nonfinite(state)
    if found is not None:
        raise NonFiniteError(step, f"weight {found[0]!r}", found[1], lr)


def scale_lr(state: dict[str, Any], factor: float) -> None:
    """Scale every optimizer's LR in a checkpoint (current and schedule base) by `factor`.

    The schedules' base LRs travel in the checkpoint and replace the configured ones on load, so
    this is where a changed LR has to go.
    """
    for opt in state.get("optimizers", {}).values():
        for group in opt.get("param_groups", []):
            group["lr"] = group["lr"] * factor
            if "initial_lr" in group:
                group["initial_lr"] = group["initial_lr"] * factor
    for sched in state.get("schedulers", {}).values():
        if "base_lrs" in sched:
            sched["base_lrs"] = [lr * factor for lr in sched["base_lrs"]]
        if "_last_lr" in sched:
            sched["_last_lr"] = [lr * factor for lr in sched["_last_lr"]]


class RollbackBudget:
    """How many rollbacks a run has made and may still make, and the LR scale they left."""

    def __init__(self, policy: str, factor: float, limit: int) -> None:
        self.policy, self.factor, self.limit = policy, factor, limit
        self.used = 0
        self.lr_scale = 1.0

    def take(self, error: NonFiniteError) -> float:
        """The LR scale after one more rollback, or re-raise `error` when none is allowed."""
        if self.policy != "rollback":
            raise error
        if self.used >= self.limit:
            raise NonFiniteError(
                error.step,
                f"{error.what} again after {self.used} rollbacks (train.max_rollbacks)",
                error.value,
            ) from error
        self.used += 1
        self.lr_scale *= self.factor
        return self.lr_scale

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed run knows its LR scale and rollbacks made."""
        return {"used": self.used, "lr_scale": self.lr_scale}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore state_dict() (None: a checkpoint from before rollbacks existed)."""
        state = state or {}
        self.used = int(state.get("used", 0))
        self.lr_scale = float(state.get("lr_scale", 1.0))


def rollback_checkpoint(budget: RollbackBudget, error: NonFiniteError, latest: Path) -> dict:
    """latest.pt with the LR lowered for one more rollback; re-raises `error` when not allowed."""
    scale = budget.take(error)
    if not latest.exists():
        raise NonFiniteError(
            error.step, f"{error.what} (no checkpoint to roll back to yet)", error.value
        ) from error
    ckpt = load_checkpoint(latest)
    saved_scale = float((ckpt.get("rollbacks") or {}).get("lr_scale", 1.0))
    scale_lr(ckpt, scale / saved_scale)
    ckpt["rollbacks"] = budget.state_dict()
    log.warning(
        "%s: rolling back to step %d with the LR scaled by %g (rollback %d of %d)",
        error,
        ckpt["step"],
        scale,
        budget.used,
        budget.limit,
    )
    return ckpt
