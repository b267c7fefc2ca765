"""Decoded pixels as arrays: Pillow images to (H, W, C) uint8, uint16 or float32."""

from __future__ import annotations

import numpy as np
from PIL import Image

FLOAT_SLACK = 1e-3  # float pixels may stray this far outside 0..1 (rounding) and are clipped


def pil_to_array(img: Image.Image) -> np.ndarray:
    """A decoded Pillow image as (H, W, C) uint8, uint16 or float32 (palette expanded)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img).astype(np.uint16)[:, :, None]
    if mode == "I":  # 32-bit integers: accepted when they fit 16 bits (older 16-bit PNG reads)
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"32-bit integer pixels span {arr.min()}..{arr.max()}, not 0..65535")
        return arr.astype(np.uint16)[:, :, None]
    if mode == "F":
        return check_float(np.asarray(img, dtype=np.float32))[:, :, None]
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode or mode.endswith("a") else "RGB")
    arr = np.asarray(img)
    return arr[:, :, None] if arr.ndim == 2 else arr


def check_float(arr: np.ndarray) -> np.ndarray:
    """Floating-point pixels must be intensities in 0..1 (NaN and far-out values are refused)."""
    arr = arr.astype(np.float32, copy=False)
    if arr.size:
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
            raise ValueError(
                f"floating-point pixels span {lo:g}..{hi:g}; pixmorph reads float images as "
                "intensities in 0..1, so rescale the data to 0..1 first"
            )
    return np.clip(arr, 0.0, 1.0)
