"""Whole-image inference only where it fits: a generator's memory per pixel against a budget.

A forward pass needs memory in proportion to the pixels it sees. The bytes per input pixel are
measured once per generator, on a small input, as the sum of every layer's output (each tensor
counted once): an upper bound on what is alive at any moment, so tiles chosen from it fit. The
budget is an explicit setting, else $PIXMORPH_MEMORY_BUDGET, else a quarter of the free memory.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from pixmorph.errors import ConfigError

BUDGET_ENV = "PIXMORPH_MEMORY_BUDGET"
# For networks whose layers cannot be seen (ONNX, TorchScript): 512 float32 values per pixel,
# more than any pixmorph generator measures at its default width.
UNSEEN_BYTES_PER_PIXEL = 2048.0
MEASURE_SIDE = 64  # px; the measuring input is at least this and a multiple of size_multiple
FALLBACK_FREE = 4 * 2**30  # when the free memory cannot be read
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str | int, option: str = BUDGET_ENV) -> int:
    """`2G`, `512M`, `1.5G`, `1000000` -> bytes; a ConfigError naming `option` otherwise."""
    found = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    value = float(found.group(1)) * _UNITS[found.group(2).upper()] if found else 0.0
    if not value >= 1:
        raise ConfigError(f"{option}={text!r}: give a memory size such as 2G, 512M or 1000000")
    return int(value)


def available_memory(device: torch.device) -> int:
    """Bytes free now: the GPU's free memory, else MemAvailable of /proc/meminfo."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_FREE


def memory_budget(setting: int | None, device: torch.device) -> int:
    """Bytes one forward pass may use: `setting`, else $PIXMORPH_MEMORY_BUDGET, else 1/4 free."""
    if setting is not None:
        return int(setting)
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if raw:
        return parse_bytes(raw)
    # a quarter: the decoded input, its padded copy, the output and the blending buffer (each
    # as large as the image in float32) need room besides the activations
    return available_memory(device) // 4


def measurable(module: nn.Module) -> bool:
    """True when the network's layers can be hooked (not ONNX or TorchScript)."""
    return not isinstance(module, torch.jit.ScriptModule) and any(True for _ in module.parameters())


@torch.inference_mode()
def bytes_per_pixel(run: Callable[[Tensor], Tensor], module: nn.Module, x: Tensor) -> float:
    """Bytes of all layer outputs of run(x) per input pixel; x is a small (1, C, h, w) input."""
    if not measurable(module):
        return UNSEEN_BYTES_PER_PIXEL
    seen: set[int] = set()
    total = [x.numel() * x.element_size()]

    def count(_m: nn.Module, _inputs: object, out: object) -> None:
        for t in out if isinstance(out, tuple | list) else (out,):
            # in-place layers hand back their input: one tensor, counted once
            if isinstance(t, Tensor) and t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total[0] += t.numel() * t.element_size()

    leaves = [m for m in module.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    # the probe must not move the random streams (dropout at inference) the real images use
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            run(x)
    finally:
        for h in handles:
            h.remove()
    return total[0] / (x.shape[2] * x.shape[3])


def measure_side(size_multiple: int) -> int:
    """The side of the measuring input: a multiple of size_multiple, at least MEASURE_SIDE."""
    return size_multiple * max(1, math.ceil(MEASURE_SIDE / size_multiple))


def fit_tile(per_pixel: float, shape: tuple[int, ...], budget: int, size_multiple: int) -> int:
    """0 when (B, C, H, W) fits `budget` whole, else the largest tile side that fits."""
    b, _, h, w = shape
    if per_pixel * b * h * w <= budget:
        return 0
    side = math.sqrt(budget / (per_pixel * b))
    # never below one size multiple: the smallest input the generator takes
    return max(size_multiple, int(side // size_multiple) * size_multiple)
