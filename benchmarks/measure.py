"""Measuring tools shared by the speed benchmarks: interleaved timing, FLOPs, peaks, memory."""

from __future__ import annotations

import ctypes
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class Timing:
    """Wall and process-CPU seconds of each timed call of one setting."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def best(self) -> float:
        return min(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(
    calls: dict[str, Callable[[int], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, Timing]:
    """Time every call `repeats` times, round-robin, so machine drift hits all alike."""
    out = {name: Timing() for name in calls}
    for i in range(warmup + repeats):
        for name, fn in calls.items():
            sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            fn(i)
            sync(device)
            if i >= warmup:
                out[name].wall.append(time.perf_counter() - t0)
                out[name].cpu.append(time.process_time() - c0)
    return out


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
