"""Which settings may change when a run is resumed, checked before any weights are loaded."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pixmorph.config import Config, merge, to_dict
from pixmorph.errors import CheckpointError, ConfigError
from pixmorph.methods.registry import get_method
from pixmorph.methods.settings import config_from_dict

log = logging.getLogger(__name__)

# fixed for the life of a run whatever the network: they decide what the weights mean
FIXED = ("method", "data.in_channels", "data.out_channels")
# free to change on resume: the schedule, bookkeeping, logging and where the data is read from
CHANGEABLE_PREFIXES = ("train.", "log.", "out")
CHANGEABLE_DATA = (
    "data.root",
    "data.root_a",
    "data.root_b",
    "data.direction",
    "data.preprocess",
    "data.flip",
    "data.num_workers",
    "data.cache",
    "data.verify",
    "data.skip_bad_files",
    "data.max_images",
)
CHANGEABLE_TEXT = (
    "train.* (steps, lr, schedule, logging, eval and checkpoint cadence...), log.*, data paths, "
    "direction, preprocess, num_workers, and model.* settings that keep every weight's shape"
)


class ResumeMismatchError(ConfigError):
    """A resume asked to change a setting the saved run cannot change."""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested settings dict as {"a.b.c": value}."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def changed_settings(saved: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple]:
    """{key: (saved, new)} for each setting both trees hold with different values."""
    a, b = flatten(saved), flatten(new)
    return {k: (a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]}


def is_changeable(key: str) -> bool:
    """Whether a setting may change on resume regardless of the networks."""
    return key.startswith(CHANGEABLE_PREFIXES) or key in CHANGEABLE_DATA


def shape_mismatch(expected: Mapping[str, Any], saved: Mapping[str, Any]) -> str | None:
    """How a saved state dict fails to fit the expected one (keys or shapes), or None."""
    missing = sorted(expected.keys() - saved.keys())
    unexpected = sorted(saved.keys() - expected.keys())
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weights the checkpoint lacks (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} it has that are not expected (e.g. {unexpected[0]})")
        return "; ".join(parts)
    for k, t in expected.items():
        s = saved[k]
        if isinstance(t, torch.Tensor) and isinstance(s, torch.Tensor) and t.shape != s.shape:
            return f"{k} is {list(s.shape)} in the checkpoint but {list(t.shape)} now"
    return None


def check_state_fits(expected: Mapping[str, Any], saved: Mapping[str, Any], what: str) -> None:
    """A CheckpointError instead of a size-mismatch traceback when weights do not fit."""
    problem = shape_mismatch(expected, saved)
    if problem:
        raise CheckpointError(
            f"{what} does not fit the networks built from its settings: {problem}"
        )


def _list_changes(changes: Mapping[str, tuple]) -> str:
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(changes.items()))


def check_resume(run: Path, ckpt: Mapping[str, Any], overrides: dict[str, Any]) -> Config:
    """The resumed run's Config, or ResumeMismatchError listing the settings that cannot change.

    A change outside the known-safe settings is allowed when the networks it builds have
    exactly the saved weights' names and shapes.
    """
    saved = ckpt["config"]
    new_method = overrides.get("method", saved.get("method"))
    if new_method != saved.get("method"):
        raise ResumeMismatchError(
            f"--resume {run}: the run was trained with method {saved.get('method')!r}, not "
            f"{new_method!r}; the method cannot change on resume: start a new run with another "
            "--out (--init-generator can start it from this run's generator)"
        )
    tree = merge(saved, overrides)
    tree["out"] = str(run)  # the folder may have moved since
    cfg = config_from_dict(tree)
    changes = changed_settings(saved, to_dict(cfg))
    fixed = {k: v for k, v in changes.items() if k in FIXED}
    suspect = {k: v for k, v in changes.items() if k not in FIXED and not is_changeable(k)}
    problem = None
    if suspect and not fixed:
        net = get_method(cfg.method)(cfg, torch.device("cpu"), training=True)
        problem = shape_mismatch(net.state_dict(), ckpt["model"])
        if problem:
            fixed.update(suspect)
    if fixed:
        why = f" (they change the weights: {problem})" if problem else ""
        raise ResumeMismatchError(
            f"--resume {run} cannot change {_list_changes(fixed)}{why}. These are fixed for a run; "
            f"what may change on resume: {CHANGEABLE_TEXT}. Start a new run with another --out "
            "for the new settings"
        )
    if changes:
        log.info("resuming %s with changed settings: %s", run, _list_changes(changes))
    return cfg


def lr_ratio(saved: Mapping[str, Any], cfg: Config) -> float:
    """new train.lr / saved train.lr: how much a resume's LR change scales every optimizer."""
    old = float(saved.get("train", {}).get("lr", cfg.train.lr))
    return cfg.train.lr / old if old > 0 and old != cfg.train.lr else 1.0
