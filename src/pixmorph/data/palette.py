"""Colour-coded label maps: derive their palette, and map colours to class indices and back.

A label map paints each class with one flat colour. Saved as JPEG (the facades set) the colours
smear: compression noise inside regions, blends along edges. `derive_palette` finds the true
colours anyway: it counts the colours of the flat pixels (inside regions, not on edges) of many
label maps in a coarse histogram, takes its densest peaks as the classes (all peaks above a
share, or the `n_classes` densest) and refines each colour from the pixels near its peak. `nearest_classes` then
gives every pixel the class of its nearest palette colour, which absorbs the noise.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

from pixmorph.data.images import PEAK
from pixmorph.errors import DataError

BIN = 8  # histogram bin width in RGB units: 32 bins a channel
FLAT_SPREAD = 24  # RGB units a pixel's 3x3 neighbourhood may vary by and still count as inside


def label_rgb(pixels: np.ndarray) -> np.ndarray:
    """Decoded label pixels (H, W, C) of any sample type -> uint8 RGB (H, W, 3)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    c = pixels.shape[2]
    if c not in (1, 2, 3, 4):
        raise DataError(f"a label map needs 1-4 channels (grey or RGB, maybe alpha), got {c}")
    rgb = pixels[:, :, :1].repeat(3, axis=2) if c < 3 else pixels[:, :, :3]
    if rgb.dtype != np.uint8:
        rgb = np.round(rgb.astype(np.float64) * (255.0 / PEAK[rgb.dtype])).astype(np.uint8)
    return rgb


def _inside_regions(rgb: np.ndarray, spread: int) -> np.ndarray:
    """Mask (H, W) of pixels whose 3x3 neighbourhood varies by at most `spread` in every channel.

    Edges between two classes blend their colours (and JPEG smears colour across them); inside a
    region only the noise remains. Counting flat pixels only keeps the blends out of the palette.
    """
    p = np.pad(rgb.astype(np.int16), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = rgb.shape[:2]
    windows = [p[i : i + h, j : j + w] for i in range(3) for j in range(3)]
    return (np.max(windows, 0) - np.min(windows, 0)).max(-1) <= spread


def _histogram(maps: Iterable[np.ndarray], max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts (n, n, n) of a colour histogram and the mean colour (n, n, n, 3) of each bin."""
    n = 256 // BIN
    counts = np.zeros(n**3)
    sums = np.zeros((n**3, 3))
    total = 0
    for m in maps:
        rgb = label_rgb(m)
        flat = _inside_regions(rgb, FLAT_SPREAD)
        rgb = rgb[flat] if flat.any() else rgb.reshape(-1, 3)
        q = rgb.astype(np.int64) // BIN
        idx = (q[:, 0] * n + q[:, 1]) * n + q[:, 2]
        counts += np.bincount(idx, minlength=n**3)
        for c in range(3):
            sums[:, c] += np.bincount(idx, weights=rgb[:, c], minlength=n**3)
        total += len(rgb)
        if total >= max_pixels:
            break
    if total == 0:
        raise DataError("no label maps to derive a palette from")
    means = sums / np.maximum(counts, 1)[:, None]
    return counts.reshape(n, n, n), means.reshape(n, n, n, 3)


def _box3(h: np.ndarray) -> np.ndarray:
    """Sum over each bin's 3x3x3 neighbourhood."""
    p = np.pad(h, 1)
    n = h.shape[0]
    return sum(
        p[i : i + n, j : j + n, k : k + n] for i in range(3) for j in range(3) for k in range(3)
    )


def _peaks(density: np.ndarray) -> np.ndarray:
    """Indices (P, 3) of the local maxima of a 3-D histogram, densest first."""
    p = np.pad(density, 1, constant_values=-1.0)
    n = density.shape[0]
    top = density > 0
    for i in range(3):
        for j in range(3):
            for k in range(3):
                if (i, j, k) == (1, 1, 1):
                    continue
                other = p[i : i + n, j : j + n, k : k + n]
                # ties go to the lower index, so a flat plateau gives one peak, not several
                top &= density > other if (i, j, k) < (1, 1, 1) else density >= other
    idx = np.argwhere(top)
    return idx[np.argsort(-density[tuple(idx.T)], kind="stable")]


def derive_palette(
    maps: Iterable[np.ndarray],
    n_classes: int = 0,
    min_share: float = 0.002,
    radius: float = 24.0,
    max_pixels: int = 4_000_000,
) -> np.ndarray:
    """The label colours (K, 3) uint8 of some label maps (H, W, C), sorted by colour.

    The colour histogram's densest peaks are the classes: `n_classes` > 0 keeps that many, 0
    keeps every peak whose neighbourhood holds at least `min_share` of the pixels. Each colour is
    then the mean of the pixels within `radius` (RGB units) of its peak that are nearest to it,
    so edge blends and compression noise far from the peak do not pull it.
    """
    counts, means = _histogram(maps, max_pixels)
    # the neighbourhood's count, plus the bin's own so a lone colour's bin tops its plateau
    density = _box3(counts) + counts
    peaks = _peaks(density)
    mass = density[tuple(peaks.T)] / counts.sum()
    if n_classes > 0:
        if len(peaks) < n_classes:
            raise DataError(
                f"the label maps hold only {len(peaks)} distinct colour(s), fewer than "
                f"model.n_classes={n_classes}; lower model.n_classes (0 derives it)"
            )
        peaks = peaks[:n_classes]
    else:
        peaks = peaks[mass >= min_share]
    occupied = counts[tuple(peaks.T)][:, None] > 0
    centres = np.where(occupied, means[tuple(peaks.T)], (peaks + 0.5) * BIN)  # (K, 3)
    used = counts.reshape(-1) > 0
    colours, weights = means.reshape(-1, 3)[used], counts.reshape(-1)[used]
    for _ in range(3):  # refine each centre from the colours near it only
        d2 = ((colours[:, None, :] - centres[None]) ** 2).sum(2)  # (N, K)
        nearest = d2.argmin(1)
        core = d2[np.arange(len(colours)), nearest] <= radius**2
        for k in range(len(centres)):
            w = weights * (core & (nearest == k))
            if w.sum() > 0:
                centres[k] = (colours * w[:, None]).sum(0) / w.sum()
    palette = np.clip(np.round(centres), 0, 255).astype(np.uint8)
    if len(np.unique(palette, axis=0)) < 2:
        raise DataError(
            f"found {len(palette)} label colour(s); a segmentation needs at least 2 classes "
            "(are these label maps? is the direction right?)"
        )
    return palette[np.lexsort(palette.T[::-1])]  # by R, then G, then B: stable across runs


def palette_tensor(palette: np.ndarray | Tensor | list) -> Tensor:
    """A palette (K, 3) of 0..255 colours as float (K, 3) in [-1, 1], the model's range."""
    p = torch.as_tensor(np.asarray(palette, dtype=np.float32))
    return p / 127.5 - 1.0


def nearest_classes(x: Tensor, palette: Tensor) -> Tensor:
    """Class of each pixel's nearest palette colour: (B, 3, H, W), (K, 3), both [-1, 1] -> (B, H, W)."""
    p = palette.to(x.device, x.dtype)
    # |x - p|^2 = |x|^2 - 2 x.p + |p|^2; |x|^2 is the same for every class, so it is left out
    score = torch.einsum("bchw,kc->bkhw", x, p) * 2 - (p * p).sum(1)[None, :, None, None]
    return score.argmax(1)


def class_colours(classes: Tensor, palette: Tensor) -> Tensor:
    """Label map image (B, 3, H, W) in [-1, 1] of class indices (B, H, W) and a palette (K, 3)."""
    return palette.to(classes.device)[classes].permute(0, 3, 1, 2).contiguous()
