"""Calibrate a run's `auto` speed settings on its own networks, size and CPU (speed/calibrate.py).

Each candidate plan trains a copy of the method for a few steps on one real batch; the original
method, its weights and the random number generators are left exactly as they were, so a
calibrated run trains the same steps as one that read its choice from the cache.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from pixmorph.config import Config, to_dict
from pixmorph.device import cpu_has_native_bf16
from pixmorph.methods.base import Method
from pixmorph.speed.allocator import reuse_freed_memory
from pixmorph.speed.calibrate import (
    CpuInfo,
    cache_key,
    calibrated,
    read_cpu_info,
    rules_origin,
)
from pixmorph.speed.calibrate import wants_calibration as _wants
from pixmorph.speed.plan import SpeedPlan, networks, to_channels_last
from pixmorph.speed.smallconv import use_matmul_for_small_maps
from pixmorph.training.runtime import TrainingRuntime

log = logging.getLogger(__name__)

BatchFn = Callable[[], dict[str, Any]]
# a candidate plan -> seconds of work to time (tests inject slow candidates here)
StepFactory = Callable[[SpeedPlan], Callable[[], object]]


def candidates(
    train_setting: Any, name: str, device: torch.device, batches_passes: bool = False
) -> list[Any]:
    """The values worth timing for one setting left on `auto` (none: nothing to calibrate)."""
    if train_setting != "auto":
        return []
    if name == "batch_passes" and not batches_passes:
        return []  # the method has no passes to batch: both values run the same step
    if name == "precision":
        # emulated bf16 is many times slower than fp32 (measured on Zen 3): never a candidate
        return ["fp32", "bf16"] if cpu_has_native_bf16() else []
    if name == "adam":
        return ["fused", "foreach"]  # the per-parameter loop is never the faster one
    return [False, True]  # small_maps, channels_last, batch_passes


CALIBRATED = ("precision", "small_maps", "adam", "channels_last", "batch_passes")


def train_steps(method: Method, cfg: Config, batch: dict[str, Any]) -> StepFactory:
    """A factory of candidates: each a fresh copy of `method` under the plan, one step a call."""

    def make(plan: SpeedPlan) -> Callable[[], object]:
        twin = copy.deepcopy(method)
        twin.runtime = TrainingRuntime(twin, cfg.train, plan)
        for child in networks(twin).values():
            if plan.small_maps:
                use_matmul_for_small_maps(child)
            if plan.channels_last:
                to_channels_last(child)
        step = iter(range(1, 1 << 30))
        return lambda: twin.train_step(batch, next(step))

    return make


def calibrate_plan(
    plan: SpeedPlan,
    cfg: Config,
    device: torch.device,
    make_step: StepFactory,
    cpu: CpuInfo | None = None,
    repeats: int = 3,
    timer: Callable[[], float] | None = None,
    batches_passes: bool = False,
) -> SpeedPlan:
    """Choose each calibrated `auto` setting by timing its candidates (cached per machine).

    Settings are chosen one after another, each on top of the choices before it; batch_passes
    only where the method has passes to batch (`batches_passes`, Method.batches_passes).
    Returns the plan with `origin` saying what was calibrated and whether it came from the cache.
    """
    cpu = cpu or read_cpu_info()
    workload = {
        "method": cfg.method,
        "model": to_dict(cfg)["model"],
        "size": cfg.data.crop_size,
        "batch": cfg.train.batch_size,
    }
    if plan.allocator == "reuse":
        reuse_freed_memory()  # candidates are timed under the allocator the run will have
    names, all_cached = [], True
    extra = {"timer": timer} if timer else {}
    with _rng_kept():
        for name in CALIBRATED:
            values = candidates(getattr(cfg.train, name), name, device, batches_passes)
            if len(values) < 2:
                continue
            # the rule's value first: it stays unless another is clearly faster (MARGIN)
            values.sort(key=lambda v: v != getattr(plan, name))
            base = {**workload, "plan": dataclasses.asdict(plan)}
            key = cache_key(cpu, {**base, "setting": name})
            steps = {
                str(v): _lazy(make_step, dataclasses.replace(plan, **{name: v})) for v in values
            }
            choice, cached = calibrated(name, key, cpu, steps, repeats=repeats, **extra)
            plan = dataclasses.replace(
                plan, **{name: values[[str(v) for v in values].index(choice)]}
            )
            names.append(name)
            all_cached = all_cached and cached
    if not names:
        return plan
    how = "cached" if all_cached else "now"
    origin = f"{', '.join(names)} calibrated on {cpu.model} ({cpu.cpu_class}), {how}"
    return dataclasses.replace(plan, origin=origin)


def _lazy(make_step: StepFactory, plan: SpeedPlan) -> Callable[[], object]:
    """Build the candidate at its first call, so a cached choice builds nothing."""
    built: list[Callable[[], object]] = []

    def call() -> object:
        if not built:
            built.append(make_step(plan))
        return built[0]()

    return call


class _rng_kept:
    """Restore torch's, numpy's and Python's random state on exit."""

    def __enter__(self) -> None:
        self.states = (torch.get_rng_state(), np.random.get_state(), random.getstate())

    def __exit__(self, *exc: object) -> None:
        torch.set_rng_state(self.states[0])
        np.random.set_state(self.states[1])
        random.setstate(self.states[2])


def first_batch(method_cls: type[Method], cfg: Config) -> dict[str, Any]:
    """The run's first training images as one batch (read in this process, no loader)."""
    ds = method_cls.make_dataset(cfg, train=True)
    items = [ds[i % len(ds)] for i in range(cfg.train.batch_size)]
    return torch.utils.data.default_collate(items)


def maybe_calibrate(
    method: Method, cfg: Config, plan: SpeedPlan, batch: BatchFn | None
) -> SpeedPlan:
    """calibrate_plan on the method's real steps when train.calibrate asks for it."""
    device = method.device
    cpu = read_cpu_info()
    if device.type == "cpu":
        plan = dataclasses.replace(plan, origin=rules_origin(cpu))
    if batch is None or not _wants(cfg.train.calibrate, cfg.train.steps, device, cpu):
        return plan
    try:
        example = batch()
    except Exception as e:  # calibration is an optimisation: never stop a run for it
        log.warning("speed: no calibration (%s: %s); using the rules", type(e).__name__, e)
        return plan
    steps = train_steps(method, cfg, example)
    return calibrate_plan(plan, cfg, device, steps, cpu, batches_passes=method.batches_passes)
