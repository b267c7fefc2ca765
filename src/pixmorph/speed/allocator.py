"""Keep freed host memory for reuse instead of handing it back to the OS (a speed setting).

PyTorch's CPU tensors come from the C library's malloc. glibc serves blocks above a threshold
(128 KiB, rising to at most 32 MiB) with fresh mmap'd pages and returns them on free, so
every step of a training loop that allocates the same large tensors again pays a page fault
and a zeroed page for every 4 KiB: measured on the benchmark CPU, ~100,000 faults per
pix2pix-256 step and ~0.2 s of a ~1 s fp32 step; an fp32 unet_256 translation took 170 ms with
the defaults and 107 ms without the faults. Raising the mmap and trim thresholds makes glibc
keep freed blocks in its heap and hand them out again, which is what a caching allocator does
on a GPU. The cost: the process keeps its peak memory until it exits.

It is process-wide, so pixmorph sets it only when a command trains or translates on the CPU
(`train.allocator`, `auto` by default); it does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the reusable heap; larger ones (rare: a 1 GiB tensor) are
# still mmap'd. The C int mallopt takes holds it.
KEEP_BYTES = 1 << 30

_applied = False


def glibc() -> ctypes.CDLL | None:
    """The running glibc, or None (another C library, or not Linux)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def reuse_freed_memory() -> bool:
    """Make malloc keep and reuse freed blocks up to KEEP_BYTES; True if it is in effect."""
    global _applied
    if _applied:
        return True
    libc = glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        log.debug("allocator: not glibc, left as it is")
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) == 1 and ok
    _applied = ok
    if ok:
        log.info(
            "allocator: freed memory kept for reuse (glibc thresholds %d MiB)", KEEP_BYTES >> 20
        )
    else:
        log.warning("allocator: glibc refused the thresholds; memory handling left as it is")
    return ok


def resolve_allocator(setting: str, device_type: str) -> str:
    """`auto` -> `reuse` for CPU work where glibc is the C library, else `system`."""
    if setting == "auto":
        return "reuse" if device_type == "cpu" and glibc() is not None else "system"
    return setting
