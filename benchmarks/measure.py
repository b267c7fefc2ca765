"""Measuring tools shared by the speed benchmarks: interleaved timing, FLOPs, peaks, memory."""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from pixmorph.speed.calibrate import read_cpu_info


@dataclass
class Timing:
    """Wall and process-CPU seconds of each timed call of one setting."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    parts: list[dict[str, float]] = field(default_factory=list)  # seconds per part of a call

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def best(self) -> float:
        return min(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def machine_line() -> str:
    """The CPU's model, class and instruction-set flags, torch, threads and load, for a header."""
    cpu = read_cpu_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cap = os.environ.get("ATEN_CPU_CAPABILITY")
    capped = f" (kernels capped to {cap})" if cap else ""
    return (
        f"CPU: {cpu.model}, class {cpu.cpu_class}{capped}; flags {' '.join(cpu.isa) or 'none'}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {load:.2f}"
    )


def line_buffered() -> None:
    """Flush every printed line, also when stdout is a pipe or a file."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure:
        reconfigure(line_buffering=True)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call (matmuls and convolutions, forward and backward), as torch counts them."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def matmul_peak(dtype: torch.dtype, n: int = 4096, repeats: int = 3) -> float:
    """GFLOP/s of the best of a few n x n matmuls: the machine's reachable peak for dtype."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> None:
    """Hand freed heap memory back to the OS, so RSS shows what is live (glibc only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def step_peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory a call needs above what is live before it.

    On CUDA the caching allocator's own counter; on CPU the resident set sampled every 0.5 ms
    from /proc/self/statm (Linux) after giving freed heap back to the OS.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device) - before
    if not os.path.exists("/proc/self/statm"):
        return -1
    _malloc_trim()
    before = _rss_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.0005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return max(peak, _rss_bytes()) - before


def tensor_bytes(tensors) -> int:
    """Bytes held by an iterable of tensors (None entries skipped)."""
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


# --- one process per setting -------------------------------------------------------------
# Some settings are process-wide (the allocator, thread pools), so each setting being compared
# runs in a worker process of its own, started the way a user would start it. The parent
# steps the workers round-robin, one call at a time, so only one of them runs at any moment
# and drift of the machine hits all alike, as in `interleaved`.


SETTLE_SECONDS = 0.3


def serve(call: Callable[[int], object], info: dict, finish: Callable[[], dict]) -> None:
    """Worker side: announce `info`, then time `call` on each request; `finish` adds results.

    A call that returns a dict (seconds per part of the call) has it passed on as `parts`.
    """
    device = torch.device("cpu")
    print(json.dumps({"ready": info}), flush=True)
    for i, line in enumerate(sys.stdin):
        if line.strip() != "step":
            break
        c0, t0 = time.process_time(), time.perf_counter()
        parts = call(i)
        sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        reply = {"wall": wall, "cpu": cpu}
        if isinstance(parts, dict):
            reply["parts"] = parts
        print(json.dumps(reply), flush=True)
    print(json.dumps({"done": finish()}), flush=True)


def interleaved_workers(
    script: str,
    workers: dict[str, list[str]],
    options: list[str],
    repeats: int,
    warmup: int,
    progress: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, Timing], dict[str, dict], dict[str, dict]]:
    """Time one worker per entry of `workers` round-robin; returns timings, infos, results.

    Each runs `python script --worker *args *options`, where args are its entry's value, with
    `env` added to its environment. `progress` gets one line per round as it completes.
    """
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(Path(script).resolve()), "--worker", *args, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for name, args in workers.items()
    }
    infos = {name: _reply(p, name)["ready"] for name, p in procs.items()}
    if progress:
        progress(
            "workers ready: " + ", ".join(f"{n} ({i.get('plan', '')})" for n, i in infos.items())
        )
    out = {name: Timing() for name in procs}
    for i in range(warmup + repeats):
        done = []
        for name, p in procs.items():
            # the worker that ran last may still spin its OpenMP threads for a while after its
            # call (libgomp's active wait); on a 2-core machine they would slow this call
            time.sleep(SETTLE_SECONDS)
            p.stdin.write("step\n")
            p.stdin.flush()
            r = _reply(p, name)
            if i >= warmup:
                out[name].wall.append(r["wall"])
                out[name].cpu.append(r["cpu"])
                if "parts" in r:
                    out[name].parts.append(r["parts"])
            done.append(f"{name} {r['wall']:.3f} s")
        if progress:
            what = "warm-up" if i < warmup else f"step {i - warmup + 1}/{repeats}"
            progress(f"{what}: " + ", ".join(done))
    results = {}
    for name, p in procs.items():
        p.stdin.write("done\n")
        p.stdin.flush()
        results[name] = _reply(p, name)["done"]
        p.wait()
    return out, infos, results


def _reply(p: subprocess.Popen, name: str) -> dict:
    """The next JSON line a worker prints (other output of its passes through)."""
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {name} stopped (exit code {p.wait()})")
        if line.startswith("{"):
            return json.loads(line)
        print(line, end="")
