"""Choose `auto` speed settings by timing them on this CPU, and remember the choice per machine.

The rules in plan.py were measured on one CPU class (AMD Zen 4, AVX512-BF16, no AMX). Other
classes differ: an AVX2-only CPU emulates bf16 and has other fused-Adam and convolution kernels,
an AMX CPU computes bf16 several times faster than fp32. For a class whose best settings were
not measured, a run long enough to pay for it times each candidate on its own networks at its
own size once, keeps the fastest, and caches the choice in a JSON file keyed by CPU model,
flags, torch version, threads and the run's networks and size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

# CPU flags that decide which kernels torch runs (and so which settings are fastest)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")

# Classes whose best settings were measured (docs/speed.md): plan.py's rules are their choice.
MEASURED_CLASSES = {"avx512_bf16": "AMD Zen 4 (AVX512-BF16, no AMX)"}

# A run calibrates (train.calibrate=auto) only from this many steps on: calibration takes
# about 30 training steps' time, once per machine and size.
CALIBRATE_MIN_STEPS = 1000
CACHE_NAME = "speed_calibration.json"


@dataclass(frozen=True)
class CpuInfo:
    """What decides a CPU's speed class: its model name and instruction-set flags."""

    model: str
    flags: frozenset[str]

    @property
    def isa(self) -> list[str]:
        """The ISA_FLAGS this CPU has, in ISA_FLAGS order."""
        return [f for f in ISA_FLAGS if f in self.flags]

    @property
    def cpu_class(self) -> str:
        """amx_bf16, avx512_bf16 (native bf16 without AMX), avx512, avx2 or other."""
        for flag in ("amx_bf16", "avx512_bf16", "avx512f", "avx2"):
            if flag in self.flags:
                return "avx512" if flag == "avx512f" else flag
        return "other"


def read_cpu_info(cpuinfo: str = "/proc/cpuinfo") -> CpuInfo:
    """The CPU's model and flags from /proc/cpuinfo (other systems: platform's processor name).

    ATEN_CPU_CAPABILITY (torch's kernel choice) caps the flags, so a run pinned to AVX2 kernels
    is calibrated and cached as the AVX2 class it behaves as.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    cap = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if cap in ("avx2", "default"):
        flags -= {f for f in ISA_FLAGS if f.startswith(("avx512", "amx"))}
        flags |= {"capped_" + cap}
    return CpuInfo(model, frozenset(flags))


def cache_file() -> Path:
    """$XDG_CACHE_HOME/pixmorph/speed_calibration.json (default ~/.cache/pixmorph/...)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "pixmorph" / CACHE_NAME


def cache_key(cpu: CpuInfo, workload: Mapping[str, Any]) -> str:
    """A key naming the machine (CPU model and ISA flags, torch, threads) and the workload."""
    machine = {
        "cpu": cpu.model,
        "isa": cpu.isa + sorted(f for f in cpu.flags if f.startswith("capped_")),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    text = json.dumps({"machine": machine, "workload": workload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load_cache(path: Path) -> dict[str, Any]:
    """The cached choices; an unreadable file counts as empty (it is only a cache)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def store_choice(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Add one entry to the cache file (written whole to a temporary file, then renamed)."""
    data = load_cache(path)
    data[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def time_candidates(
    candidates: Mapping[str, Callable[[], object]],
    repeats: int = 3,
    warmup: int = 1,
    timer: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each candidate, timed round-robin so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(warmup + repeats):
        for name, fn in candidates.items():
            t0 = timer()
            fn()
            if i >= warmup:
                times[name].append(timer() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


# A candidate replaces the first one listed (the rule's value) only when it is this much faster:
# a shared machine's noise must not flip a setting on a near tie.
MARGIN = 0.03


def fastest(times: Mapping[str, float], margin: float = MARGIN) -> str:
    """The fastest candidate, unless the first listed is within `margin` of it."""
    first = next(iter(times))
    best = min(times, key=lambda name: times[name])
    return first if times[first] <= times[best] * (1 + margin) else best


def calibrated(
    setting: str,
    key: str,
    cpu: CpuInfo,
    candidates: Mapping[str, Callable[[], object]],
    path: Path | None = None,
    timer: Callable[[], float] = time.perf_counter,
    repeats: int = 3,
) -> tuple[str, bool]:
    """The fastest candidate for `setting` from the cache, else timed now and cached.

    Returns (choice, came_from_cache). `key` names machine and workload (cache_key).
    """
    path = path or cache_file()
    entry_key = f"{key}:{setting}"
    entry = load_cache(path).get(entry_key)
    if isinstance(entry, dict) and entry.get("choice") in candidates:
        return entry["choice"], True
    times = time_candidates(candidates, repeats=repeats, timer=timer)
    choice = fastest(times)
    log.info(
        "speed: calibrated %s on %s: %s",
        setting,
        cpu.model,
        ", ".join(f"{name} {t * 1e3:.0f} ms" for name, t in times.items()),
    )
    entry = {"choice": choice, "times": times, "cpu": cpu.model, "when": time.time()}
    try:
        store_choice(path, entry_key, entry)
    except OSError as e:  # a read-only home: calibrate again next time, but train now
        log.warning("speed: could not cache the calibration in %s (%s)", path, e)
    return choice, False


def wants_calibration(setting: bool | str, steps: int, device: torch.device, cpu: CpuInfo) -> bool:
    """train.calibrate: `auto` calibrates CPU runs of CALIBRATE_MIN_STEPS+ steps on a CPU class
    whose settings were not measured; true always on a CPU; false never."""
    if device.type != "cpu" or setting is False:
        return False
    if setting is True:
        return True
    return steps >= CALIBRATE_MIN_STEPS and cpu.cpu_class not in MEASURED_CLASSES


def rules_origin(cpu: CpuInfo) -> str:
    """How plan.py's rules relate to this CPU, for the start-up line."""
    measured = MEASURED_CLASSES.get(cpu.cpu_class)
    if measured:
        return f"rules measured on {measured}"
    return (
        f"rules measured on another CPU class, not on {cpu.model} ({cpu.cpu_class}); "
        f"runs of {CALIBRATE_MIN_STEPS}+ steps or train.calibrate=true time them"
    )
