"""Device choice and mixed-precision support, so the same code runs on CPU and CUDA."""

from __future__ import annotations

import contextlib
import logging
import os

import torch

from pixmorph.errors import ConfigError

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name}: CUDA is not available on this machine")
    return dev


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX), not by emulation."""
    if os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "default"):
        return False  # torch was told to run kernels without those instructions
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# Below this crop size bf16 autocast does not pay on a CPU (measured, docs/speed.md): at 32x32
# the convolutions are too small for the bf16 kernels to win back the casts; from 64 they do.
CPU_BF16_MIN_SIZE = 64


def resolve_precision(precision: str, device: torch.device, image_size: int | None = None) -> str:
    """Turn `auto` into fp32/bf16/fp16 for this device and image size; reject what cannot run."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        big = image_size is None or image_size >= CPU_BF16_MIN_SIZE
        return "bf16" if device.type == "cpu" and big and cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"precision fp16 needs a CUDA device, not {device.type}; use bf16 or fp32 "
            "(train.precision=bf16, or --precision bf16 to translate)"
        )
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        log.warning("this CPU emulates bf16 (no AVX512-BF16 or AMX): fp32 is likely faster")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for a precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
