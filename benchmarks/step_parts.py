"""Where a training step's time goes: data, forward per network, backward and optimizer per
optimizer, the rest of train_step, and writing the log line (train_speed.py --parts)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pixmorph.config import Config
from pixmorph.data import synth
from pixmorph.methods.base import Method
from pixmorph.run_folder import RunDir
from pixmorph.speed.plan import networks
from pixmorph.training.calibration import first_batch
from pixmorph.training.logsinks import JsonlSink

ORDER = ("data", "forward", "backward", "optimizer", "rest", "logging")


class StepParts:
    """Hooks on a method's networks and optimizers that add up seconds per part of a step."""

    def __init__(self, method: Method) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[str, list[float]] = defaultdict(list)
        for name, net in networks(method).items():
            net.register_forward_pre_hook(self._enter(name))
            net.register_forward_hook(self._leave(name))
        runtime = method.runtime

        def optimize(name: str, loss: torch.Tensor) -> None:
            opt, scaler = runtime.optimizers[name], runtime.scalers[name]
            opt.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            scaler.scale(loss).backward()
            t1 = time.perf_counter()
            scaler.step(opt)
            scaler.update()
            self.seconds[f"backward {name}"] += t1 - t0
            self.seconds[f"optimizer {name}"] += time.perf_counter() - t1

        runtime.optimize = optimize  # an instance attribute: the method's calls land here

    def _enter(self, name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any) -> None:
            self._started[name].append(time.perf_counter())

        return hook

    def _leave(self, name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, out: Any) -> None:
            self.seconds[f"forward {name}"] += time.perf_counter() - self._started[name].pop()

        return hook

    def measure(self, step: Callable[[], dict[str, float]], log: Callable[[dict], None]) -> dict:
        """Seconds of each part of one call of `step`, then of logging its losses."""
        self.seconds.clear()
        t0 = time.perf_counter()
        losses = step()
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        log({"step": 1, **losses})
        parts = dict(self.seconds)
        parts["rest"] = total - sum(parts.values())
        parts["logging"] = time.perf_counter() - t1
        return parts


def data_timer(cfg: Config, method: Method, size: int) -> Callable[[], float]:
    """Seconds to read, decode, check and augment one batch of synthetic images at `size`."""
    root = Path(tempfile.mkdtemp(prefix="pixmorph-parts-"))
    write = synth.write_unpaired if method.data_kind == "unaligned" else synth.write_paired
    write(root, n=4, size=size, test_fraction=0.25)
    run_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(root)))
    cls = type(method)

    def timed() -> float:
        t0 = time.perf_counter()
        first_batch(cls, run_cfg)
        return time.perf_counter() - t0

    return timed


def jsonl_logger() -> Callable[[dict], None]:
    """What the trainer does with a step's losses when it logs: one JSONL line."""
    run = RunDir(Path(tempfile.mkdtemp(prefix="pixmorph-log-")))
    run.create()
    sink = JsonlSink(run)
    return sink.write


def parts_table(parts: dict[str, list[dict[str, float]]]) -> list[str]:
    """Median milliseconds per part, one row per setting."""
    names = sorted({k for runs in parts.values() for r in runs for k in r}, key=_order)
    lines = [f"{'setting':<16} " + " ".join(f"{n:>14}" for n in names)]
    for setting, runs in parts.items():
        cells = []
        for n in names:
            values = sorted(r.get(n, 0.0) for r in runs)
            cells.append(f"{values[len(values) // 2] * 1e3:>11.0f} ms" if values else f"{'-':>14}")
        lines.append(f"{setting:<16} " + " ".join(cells))
    return lines


def _order(name: str) -> tuple[int, str]:
    return ORDER.index(name.split()[0]), name
