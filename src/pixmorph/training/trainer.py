"""The training loop: steps, schedule, logging, sample grids, checkpoints and exact resume."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from pixmorph.checkpoint import load_checkpoint, save_atomic, set_rng_state
from pixmorph.config import Config, to_dict, write_yaml
from pixmorph.data.val_split import record_split
from pixmorph.device import pick_device
from pixmorph.errors import ConfigError
from pixmorph.interop.weights import generator_weights
from pixmorph.methods.base import Method
from pixmorph.methods.registry import get_method
from pixmorph.run_folder import RunDir
from pixmorph.training import distributed
from pixmorph.training.budget import RunClock
from pixmorph.training.calibration import first_batch
from pixmorph.training.ema import GeneratorEMA, averaged, build_ema
from pixmorph.training.held_out import BestTracker
from pixmorph.training.lock import RunLock
from pixmorph.training.logsinks import Sinks, open_sinks
from pixmorph.training.resume_check import check_resume, lr_ratio
from pixmorph.training.runtime import TrainingRuntime
from pixmorph.training.sample_eval import build_evaluator
from pixmorph.training.samples import save_grid
from pixmorph.training.setup import (
    build_method,
    checkpoint_payload,
    make_loader,
    restore,
    sample_batch,
    seed_everything,
)
from pixmorph.training.watch import (
    NonFiniteError,
    RollbackBudget,
    check_losses,
    check_weights,
    rollback_checkpoint,
    scale_lr,
)

log = logging.getLogger(__name__)

# a callback the CLI uses to draw progress: (step, total, losses, images_per_second)
ProgressFn = Callable[[int, int, dict[str, float], float], None]


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


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
        self.clock = RunClock(cfg.train.time_budget * 60.0)
        self.ema: GeneratorEMA | None = None
        if self.clock.budgeted and self.dist.enabled:
            # every rank would read its own clock: LRs and the last step could differ
            raise ConfigError("train.time_budget does not work in a torchrun job yet; use steps")
        t = cfg.train
        self.rollbacks = RollbackBudget(t.on_nonfinite, t.rollback_lr_factor, t.max_rollbacks)
        self._method: Method | None = None

    @classmethod
    def resume(
        cls, run_dir: str | Path, overrides: dict[str, Any] | None = None, **kw: Any
    ) -> Trainer:
        """A trainer continuing the run in `run_dir`; overrides (e.g. a new step total) apply.

        Overrides that would change the weights (method, channels, architecture) are refused
        with a list before anything is loaded into a network.
        """
        run = RunDir(run_dir)
        ckpt = load_checkpoint(run.latest)
        cfg = check_resume(run.root, ckpt, overrides or {})
        scale_lr(ckpt, lr_ratio(ckpt["config"], cfg))  # saved schedules would undo a new train.lr
        trainer = cls(cfg, **kw)
        trainer._resume_from = ckpt
        return trainer

    _resume_from: dict[str, Any] | None = None

    def build(self) -> Method:
        """Seed, then build the method for training (every rank builds the same weights)."""
        seed_everything(self.cfg.train.seed)
        budget = self.clock.progress if self.clock.budgeted else None
        batch = None if self.dist.enabled else lambda: first_batch(self.method_cls, self.cfg)
        return build_method(self.cfg, self.device, progress=budget, batch=batch)

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
        # never let NaN/Inf weights become latest.pt (every rank holds the same weights)
        check_weights(method.state_dict(), step, self.cfg.train.lr)
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
        payload |= {
            "best": self.best.state_dict(),
            "clock": self.clock.state_dict(),
            "rollbacks": self.rollbacks.state_dict(),
        }
        if self.ema is not None:
            payload["ema"] = self.ema.state_dict()
        return payload

    def save_best(self, method: Method, step: int) -> Path:
        """Write best.pt: the full checkpoint of the best step by train.best_metric so far."""
        payload = self._payload(method, step)
        log.info("best %s so far at step %d: %.4f", self.best.metric, step, self.best.value)
        return save_atomic(payload, self.run.best)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum

    def fit(self, method: Method | None = None) -> Path:
        """Train to cfg.train.steps holding the run folder's lock; returns the run folder.

        A NaN/Inf loss or weight raises NonFiniteError, or with train.on_nonfinite=rollback goes
        back to latest.pt with a lower LR and continues (docs/robustness.md).
        """
        with RunLock(self.run.root, self.run.checkpoints, enabled=self.dist.is_main):
            while True:
                try:
                    return self._fit_once(method)
                except NonFiniteError as e:
                    method = self._roll_back(e)

    def _roll_back(self, error: NonFiniteError) -> Method:
        """Make the next _fit_once restart from latest.pt with a lower LR (or re-raise)."""
        self._resume_from = rollback_checkpoint(self.rollbacks, error, self.run.latest)
        assert self._method is not None  # a NonFiniteError comes from a built method
        return self._method

    def _fit_once(self, method: Method | None = None) -> Path:
        """Train to cfg.train.steps from the start or from _resume_from."""
        cfg, run = self.cfg, self.run
        main = self.dist.is_main
        self.clock.start()  # a time budget counts the whole call: building and data too
        if self._resume_from is None and run.latest.exists():
            raise ConfigError(
                f"{run.root} already holds a run; continue it with --resume {run.root} "
                "or choose another --out"
            )
        if main:
            run.create()
        method = self._method = method or self.build()
        runtime = method.runtime
        if not isinstance(runtime, TrainingRuntime):
            raise TypeError("fit() needs a method built by Trainer.build()")
        start = 0
        if self._resume_from is not None:
            restore(method, self._resume_from)
            start = int(self._resume_from["step"])
            self._restore_rng(self._resume_from["rng"])
            self.best.load_state_dict(self._resume_from.get("best"))
            self.clock.load_state_dict(self._resume_from.get("clock"))
            self.rollbacks.load_state_dict(self._resume_from.get("rollbacks"))
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
        t = cfg.train
        self.ema = build_ema(
            method, t.ema_half_life, t.batch_size * self.dist.world_size, t.ema_rampup, t.ema_every
        )
        if self.ema is not None and self._resume_from is not None:
            self.ema.load_state_dict(self._resume_from.get("ema"))
        if self.dist.enabled:
            runtime.distribute(method, [self.device.index] if self.device.type == "cuda" else None)
        if self.clock.done() or (not self.clock.budgeted and start >= cfg.train.steps):
            log.warning(
                "nothing to do: %s is at step %d already (train.steps %d, or its time budget is "
                "spent); give a larger --steps or --minutes to train on",
                run.root,
                start,
                cfg.train.steps,
            )
            return run.root
        if main:
            write_yaml(run.config, to_dict(cfg))
            record_split(cfg, run.root)

        dataset = self.method_cls.make_dataset(cfg, train=True)
        fixed = sample_batch(self.method_cls, cfg, cfg.train.num_samples) if main else None
        held_out = build_evaluator(self.method_cls, cfg) if cfg.train.eval_every and main else None
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
                "training %s on %d images, batch %s, %s, device %s, precision %s",
                cfg.method,
                len(dataset),
                batch_text,
                f"{cfg.train.time_budget:g} minutes"
                if self.clock.budgeted
                else f"{cfg.train.steps} steps",
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
            # a time budget ends the loop when its clock says so, not at train.steps
            end = sys.maxsize if self.clock.budgeted else cfg.train.steps
            for step in range(start + 1, end + 1):
                batch = next(batches)
                losses = method.train_step(batch, step)
                check_losses(losses, step, cfg.train.lr, across_ranks=self.dist.enabled)
                self.clock.tick()  # before the LR step: the schedule reads the new estimate
                runtime.end_step()
                if self.ema is not None:
                    self.ema.update(step)
                last = self.clock.done() if self.clock.budgeted else step == cfg.train.steps
                images_since += cfg.train.batch_size * self.dist.world_size
                if main and (step % cfg.train.log_every == 0 or last):
                    now = time.perf_counter()
                    ips = images_since / max(now - t_last, 1e-9)
                    t_last, images_since = now, 0
                    lrs = runtime.learning_rates()
                    elapsed = self.clock.elapsed()
                    sinks.write(
                        {"step": step, **losses, **lrs, "images_per_s": ips, "elapsed_s": elapsed}
                    )
                    if self.progress:
                        total = self.clock.estimated_total(step) if self.clock.budgeted else end
                        self.progress(step, total, losses, ips)
                if (
                    fixed is not None
                    and cfg.train.sample_every
                    and (step % cfg.train.sample_every == 0 or last)
                ):
                    with averaged(self.ema):
                        save_grid(method.visuals(fixed), run.samples / f"step_{step:08d}.png")
                if held_out and (step % cfg.train.eval_every == 0 or last):
                    with averaged(self.ema):
                        scores = held_out(method)
                    sinks.write({"step": step, **scores, "elapsed_s": self.clock.elapsed()})
                    if self.best.update(step, scores):
                        self.save_best(method, step)
                if step % cfg.train.checkpoint_every == 0 or last:
                    self.save(method, step)
                    saved_step = step
                if self._stop_signal is not None:
                    raise KeyboardInterrupt
                if last:
                    break
        except KeyboardInterrupt:
            # the step counter names the last *completed* step only if train_step returned
            done = step if runtime.completed(step) else step - 1
            if done > saved_step:
                try:
                    self.save(method, done, gather=False)
                except NonFiniteError as e:  # keep the last good checkpoint
                    log.warning("%s; latest.pt stays at step %d", e, saved_step)
                    done = saved_step
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
