"""The training loop: steps, schedule, logging, sample grids, checkpoints and exact resume."""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from pixmorph.checkpoint import load_checkpoint, make_payload, rng_state, save_atomic, set_rng_state
from pixmorph.config import Config, merge, to_dict, write_yaml
from pixmorph.data.batching import item_shapes
from pixmorph.data.sampler import StepSampler
from pixmorph.device import pick_device
from pixmorph.errors import ConfigError
from pixmorph.interop.weights import generator_weights
from pixmorph.methods.base import Method
from pixmorph.methods.registry import get_method
from pixmorph.methods.settings import config_from_dict
from pixmorph.run_folder import RunDir
from pixmorph.speed.plan import apply_plan, resolve_speed
from pixmorph.training import distributed
from pixmorph.training.calibration import BatchFn, first_batch, maybe_calibrate
from pixmorph.training.held_out import BestTracker, HeldOutEval
from pixmorph.training.logsinks import Sinks, open_sinks
from pixmorph.training.runtime import TrainingRuntime
from pixmorph.training.samples import save_grid

log = logging.getLogger(__name__)

# a callback the CLI uses to draw progress: (step, total, losses, images_per_second)
ProgressFn = Callable[[int, int, dict[str, float], float], None]


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


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
    method.load_state_dict(state["model"])
    runtime = method.runtime
    if isinstance(runtime, TrainingRuntime):
        runtime.load_state_dict(state)
    method.load_extra_state(state.get("extra", {}))


def build_method(cfg: Config, device: torch.device, batch: BatchFn | None = None) -> Method:
    """A method built for training: its networks, then its optimizers under the speed plan.

    `batch`: gives one training batch, to calibrate the plan on (training/calibration.py).
    """
    method = get_method(cfg.method)(cfg, device, training=True)
    plan = resolve_speed(cfg.train, device, cfg.data.crop_size, method.compile_pays())
    plan = maybe_calibrate(method, cfg, plan, batch)
    method.runtime = TrainingRuntime(method, cfg.train, plan)
    return apply_plan(method, plan)  # channels_last, compile


class Trainer:
    """Runs a method's train_step over the data, with the bookkeeping every method shares."""

    def __init__(self, cfg: Config, progress: ProgressFn | None = None) -> None:
        self.cfg = cfg
        self.run = RunDir(cfg.out)
        self.progress = progress
        self.dist, device_name = distributed.setup(cfg.train.device)
        self.device = pick_device(device_name)
        self.method_cls = get_method(cfg.method)
        self.best = BestTracker(cfg.train.best_metric)
        self._stop_signal: int | None = None

    @classmethod
    def resume(
        cls, run_dir: str | Path, overrides: dict[str, Any] | None = None, **kw: Any
    ) -> Trainer:
        """A trainer continuing the run in `run_dir`; overrides (e.g. a new step total) apply."""
        run = RunDir(run_dir)
        ckpt = load_checkpoint(run.latest)
        tree = ckpt["config"]
        if overrides:
            tree = merge(tree, overrides)
        tree["out"] = str(run.root)
        trainer = cls(config_from_dict(tree), **kw)
        trainer._resume_from = ckpt
        return trainer

    _resume_from: dict[str, Any] | None = None

    def build(self) -> Method:
        """Seed, then build the method for training (every rank builds the same weights)."""
        seed_everything(self.cfg.train.seed)
        batch = None if self.dist.enabled else lambda: first_batch(self.method_cls, self.cfg)
        return build_method(self.cfg, self.device, batch)

    def _restore_rng(self, rng: dict[str, Any]) -> None:
        ranks = rng.get("ranks")
        if self.dist.enabled and ranks is not None and len(ranks) == self.dist.world_size:
            set_rng_state({**rng, "torch": ranks[self.dist.rank]})
        else:
            set_rng_state(rng)
            if self.dist.enabled:  # a different process count: distinct but not the saved streams
                log.warning(
                    "resuming with %d processes: RNG streams restart per rank", self.dist.world_size
                )
                torch.manual_seed(self.cfg.train.seed + 1_000_003 * (self.dist.rank + 1))

    def save(self, method: Method, step: int, gather: bool = True) -> Path:
        """Write latest.pt (and a per-step copy), pruning old per-step copies (main rank only).

        In a parallel job every rank must call this at the same step (its RNG state is gathered);
        gather=False skips that, for saving on an interrupt that ranks may see at different steps.
        """
        rank_rng = None
        if self.dist.enabled and gather:
            rank_rng = distributed.all_gather_tensor(torch.get_rng_state())
        if not self.dist.is_main:
            return self.run.latest
        payload = self._payload(method, step, rank_rng)
        save_atomic(payload, self.run.latest)
        keep = self.cfg.train.keep_checkpoints
        if keep > 0:
            save_atomic(payload, self.run.step_checkpoint(step))
            for old in self.run.step_checkpoints()[:-keep]:
                old.unlink(missing_ok=True)
        return self.run.latest

    def _payload(
        self, method: Method, step: int, rank_rng: list[torch.Tensor] | None = None
    ) -> dict[str, Any]:
        # the best-so-far travels in every checkpoint, so a resume keeps it
        payload = checkpoint_payload(method, self.cfg, step, rank_rng)
        return payload | {"best": self.best.state_dict()}

    def save_best(self, method: Method, step: int) -> Path:
        """Write best.pt: the full checkpoint of the best step by train.best_metric so far."""
        payload = self._payload(method, step)
        log.info("best %s so far at step %d: %.4f", self.best.metric, step, self.best.value)
        return save_atomic(payload, self.run.best)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum

    def fit(self, method: Method | None = None) -> Path:
        """Train to cfg.train.steps; returns the run folder."""
        cfg, run = self.cfg, self.run
        main = self.dist.is_main
        if self._resume_from is None and run.latest.exists():
            raise ConfigError(
                f"{run.root} already holds a run; continue it with --resume {run.root} "
                "or choose another --out"
            )
        if main:
            run.create()
        method = method or self.build()
        runtime = method.runtime
        if not isinstance(runtime, TrainingRuntime):
            raise TypeError("fit() needs a method built by Trainer.build()")
        start = 0
        if self._resume_from is not None:
            restore(method, self._resume_from)
            start = int(self._resume_from["step"])
            self._restore_rng(self._resume_from["rng"])
            self.best.load_state_dict(self._resume_from.get("best"))
            if main:
                run.truncate_metrics(start)
            log.info("resumed %s at step %d", run.root, start)
        else:
            if cfg.train.init_generator:
                module = method.inference_generator().module
                module.load_state_dict(generator_weights(cfg.train.init_generator, module))
                log.info("generator initialised from %s", cfg.train.init_generator)
            if self.dist.enabled:  # same initial weights everywhere, distinct dropout streams
                torch.manual_seed(cfg.train.seed + 1_000_003 * (self.dist.rank + 1))
        if self.dist.enabled:
            runtime.distribute(method, [self.device.index] if self.device.type == "cuda" else None)
        if main:
            write_yaml(run.config, to_dict(cfg))
        if start >= cfg.train.steps:
            log.info("nothing to do: the run is at step %d of %d", start, cfg.train.steps)
            return run.root

        dataset = self.method_cls.make_dataset(cfg, train=True)
        fixed = sample_batch(self.method_cls, cfg, cfg.train.num_samples) if main else None
        held_out = (
            HeldOutEval.build(self.method_cls, cfg) if cfg.train.eval_every and main else None
        )
        batches: Iterator[dict[str, Any]] = iter(
            make_loader(dataset, cfg, start, self.device, self.dist)
        )
        batch_text = str(cfg.train.batch_size)
        if self.dist.enabled:
            batch_text = (
                f"{cfg.train.batch_size} per process x {self.dist.world_size} processes "
                f"= global batch {cfg.train.batch_size * self.dist.world_size}"
            )
        if main:
            log.info(
                "training %s on %d images, batch %s, %d steps, device %s, precision %s",
                cfg.method,
                len(dataset),
                batch_text,
                cfg.train.steps,
                self.device,
                method.precision,
            )

        sinks = open_sinks(cfg, run, start) if main else Sinks([])
        old_handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM,)}
        for s in old_handlers:
            try:
                signal.signal(s, self._on_signal)
            except ValueError:  # not the main thread: signals stay as they are
                old_handlers = {}
        step = start
        saved_step = start
        try:
            t_last = time.perf_counter()
            images_since = 0
            for step in range(start + 1, cfg.train.steps + 1):
                batch = next(batches)
                losses = method.train_step(batch, step)
                runtime.end_step()
                images_since += cfg.train.batch_size * self.dist.world_size
                if main and (step % cfg.train.log_every == 0 or step == cfg.train.steps):
                    now = time.perf_counter()
                    ips = images_since / max(now - t_last, 1e-9)
                    t_last, images_since = now, 0
                    sinks.write(
                        {"step": step, **losses, **runtime.learning_rates(), "images_per_s": ips}
                    )
                    if self.progress:
                        self.progress(step, cfg.train.steps, losses, ips)
                if (
                    fixed is not None
                    and cfg.train.sample_every
                    and (step % cfg.train.sample_every == 0 or step == cfg.train.steps)
                ):
                    save_grid(method.visuals(fixed), run.samples / f"step_{step:08d}.png")
                if held_out and (step % cfg.train.eval_every == 0 or step == cfg.train.steps):
                    scores = held_out(method)
                    sinks.write({"step": step, **scores})
                    if self.best.update(step, scores):
                        self.save_best(method, step)
                if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps:
                    self.save(method, step)
                    saved_step = step
                if self._stop_signal is not None:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            # the step counter names the last *completed* step only if train_step returned
            done = step if runtime.completed(step) else step - 1
            if done > saved_step:
                self.save(method, done, gather=False)
            raise TrainingInterrupted(done, run.latest) from None
        finally:
            sinks.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        if self.dist.enabled:
            # wrappers hold the process group; release them before it is destroyed
            runtime.undistribute()
            del batches
            gc.collect()
        distributed.teardown()
        return run.root


def train(cfg: Config, progress: ProgressFn | None = None) -> Path:
    """Train a fresh run described by cfg."""
    return Trainer(cfg, progress).fit()
