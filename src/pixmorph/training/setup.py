"""What the trainer builds and saves: the method under its speed plan, the data loader, the
fixed sample batch, and the checkpoint payload a run writes and restores."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from pixmorph.checkpoint import make_payload, rng_state
from pixmorph.config import Config, to_dict
from pixmorph.data.batching import item_shapes
from pixmorph.data.sampler import StepSampler
from pixmorph.methods.base import Method
from pixmorph.methods.registry import get_method
from pixmorph.speed.plan import apply_plan, resolve_speed
from pixmorph.training import distributed
from pixmorph.training.calibration import BatchFn, maybe_calibrate
from pixmorph.training.resume_check import check_state_fits
from pixmorph.training.runtime import TrainingRuntime

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA); data randomness is keyed separately by the sampler."""
    torch.manual_seed(seed)


def make_loader(
    dataset: Dataset,
    cfg: Config,
    start_step: int,
    device: torch.device,
    dist_info: distributed.DistInfo = distributed.SINGLE,
) -> DataLoader:
    """An endless loader that starts at the sample a given step would see (this rank's share)."""
    t, d = cfg.train, cfg.data
    sampler = StepSampler(
        len(dataset),
        seed=t.seed,
        start=start_step * t.batch_size,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )
    return DataLoader(
        dataset,
        batch_size=t.batch_size,
        sampler=sampler,
        num_workers=d.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=d.num_workers > 0,
        # a private generator, so worker seeding never draws from the global RNG
        generator=torch.Generator().manual_seed(t.seed),
    )


def sample_batch(method_cls: type[Method], cfg: Config, n: int) -> dict[str, Any] | None:
    """A fixed batch for sample grids: the first n evaluation images (or training images)."""
    try:
        ds = method_cls.make_dataset(cfg, train=False)
    except Exception as e:  # samples are a convenience; never stop training for them
        log.warning("no sample grid images: %s", e)
        return None
    items = [ds[i] for i in range(min(n, len(ds)))]
    if not items:
        return None
    # evaluation images may differ in size (e.g. SR test sets): keep those one batch can hold
    items = [it for it in items if item_shapes(it) == item_shapes(items[0])]
    return torch.utils.data.default_collate(items)


def checkpoint_payload(
    method: Method, cfg: Config, step: int, rank_rng: list[torch.Tensor] | None = None
) -> dict[str, Any]:
    """Everything a checkpoint holds (rank_rng: every process's RNG state in a parallel job)."""
    rng = rng_state()
    if rank_rng is not None:
        rng["ranks"] = rank_rng
    runtime = method.runtime
    training = runtime.state_dict() if isinstance(runtime, TrainingRuntime) else None
    return make_payload(
        to_dict(cfg), step, method.state_dict(), training, method.extra_state(), rng
    )


def restore(method: Method, state: dict[str, Any]) -> None:
    """Load a checkpoint's weights, optimizer state and the method's extra state."""
    check_state_fits(method.state_dict(), state["model"], f"the checkpoint of step {state['step']}")
    method.load_state_dict(state["model"])
    runtime = method.runtime
    if isinstance(runtime, TrainingRuntime):
        runtime.load_state_dict(state)
    method.load_extra_state(state.get("extra", {}))


def build_method(
    cfg: Config,
    device: torch.device,
    *,
    progress: Callable[[], float] | None = None,
    batch: BatchFn | None = None,
) -> Method:
    """A method built for training: its networks, then its optimizers under the speed plan.

    `progress` (a time budget's clock) drives the linear LR schedule instead of the step count.
    `batch` gives one training batch, to calibrate the plan on (training/calibration.py).
    """
    method = get_method(cfg.method)(cfg, device, training=True)
    plan = resolve_speed(cfg.train, device, cfg.data.crop_size, method.compile_pays())
    plan = maybe_calibrate(method, cfg, plan, batch)
    method.runtime = TrainingRuntime(method, cfg.train, plan, progress)
    return apply_plan(method, plan)  # channels_last, compile
