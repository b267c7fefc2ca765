"""Canny edge detection in plain numpy: Gaussian blur, Sobel, non-maximum suppression, hysteresis.

Intensities are floats in [0, 1]; gradients are in intensity per pixel (Sobel divided by 8), so a
clean step of contrast c blurred with sigma s peaks at about c / (2.5 s).
"""

from __future__ import annotations

import math

import numpy as np

# Neighbour offsets (dy, dx) along the gradient for the four direction bins: 0, 45, 90, 135 deg
# with y pointing down, so a gradient of (1, 1) runs towards the bottom right.
_ALONG = ((0, 1), (1, 1), (1, 0), (1, -1))


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian reaching out to 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _correlate_1d(img: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along one axis with edge-reflected borders (no scipy needed)."""
    r = len(kernel) // 2
    pad = [(0, 0)] * img.ndim
    pad[axis] = (r, r)
    padded = np.pad(img, pad, mode="reflect" if img.shape[axis] > r else "edge")
    n = img.shape[axis]
    out = np.zeros_like(img, dtype=np.float32)
    for i, w in enumerate(kernel):
        out += w * np.take(padded, np.arange(i, i + n), axis=axis)
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W) or (H, W, C) float image."""
    if sigma <= 0:
        return img.astype(np.float32)
    k = gaussian_kernel(sigma)
    return _correlate_1d(_correlate_1d(img, k, 0), k, 1)


def sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image gradients (gx, gy) in intensity per pixel, each the shape of `img`."""
    smooth = np.array([1, 2, 1], dtype=np.float32) / 4
    diff = np.array([-1, 0, 1], dtype=np.float32) / 2
    gx = _correlate_1d(_correlate_1d(img, smooth, 0), diff, 1)
    gy = _correlate_1d(_correlate_1d(img, diff, 0), smooth, 1)
    return gx, gy


def colour_gradient(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(magnitude, gx, gy) of an (H, W) or (H, W, C) image; colour takes the strongest channel."""
    gx, gy = sobel(img)
    mag = np.hypot(gx, gy)
    if img.ndim == 3:
        # The strongest channel per pixel keeps edges between colours of equal brightness,
        # which a grey conversion would erase.
        pick = mag.argmax(axis=2)[..., None]
        gx = np.take_along_axis(gx, pick, 2)[..., 0]
        gy = np.take_along_axis(gy, pick, 2)[..., 0]
        mag = np.take_along_axis(mag, pick, 2)[..., 0]
    return mag, gx, gy


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = a[y + dy, x + dx], zero outside the image."""
    h, w = a.shape
    out = np.zeros_like(a)
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[yd, xd] = a[ys, xs]
    return out


def non_maximum_suppression(mag: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Keep only pixels that are a local maximum of `mag` across the edge (along the gradient)."""
    angle = np.degrees(np.arctan2(gy, gx)) % 180.0
    bins = np.round(angle / 45.0).astype(np.int64) % 4
    keep = np.zeros(mag.shape, dtype=bool)
    for b, (dy, dx) in enumerate(_ALONG):
        ahead, behind = _shift(mag, dy, dx), _shift(mag, -dy, -dx)
        # Strict on one side only: a ridge two pixels wide with equal values (a step edge lying
        # between pixels) keeps exactly one of its pixels.
        keep |= (bins == b) & (mag > ahead) & (mag >= behind)
    return np.where(keep, mag, 0.0).astype(np.float32)


def dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a boolean mask by one pixel in all 8 directions."""
    out = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                out |= _shift(mask, dy, dx)
    return out


def hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Pixels of `weak` 8-connected through `weak` to a pixel of `strong`."""
    edges = strong & weak
    frontier = edges
    while frontier.any():  # grows one pixel a step along every weak chain; ends at their ends
        grown = dilate(frontier) & weak & ~edges
        edges |= grown
        frontier = grown
    return edges


_RING = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _simple(edges: np.ndarray, y: int, x: int) -> bool:
    """True when the edge neighbours of (y, x) stay one 8-connected group without it."""
    h, w = edges.shape
    on = [
        (dy, dx)
        for dy, dx in _RING
        if 0 <= y + dy < h and 0 <= x + dx < w and edges[y + dy, x + dx]
    ]
    seen, todo = {on[0]}, [on[0]]
    while todo:
        cy, cx = todo.pop()
        for n in on:
            if n not in seen and abs(n[0] - cy) <= 1 and abs(n[1] - cx) <= 1:
                seen.add(n)
                todo.append(n)
    return len(seen) == len(on)


def break_squares(edges: np.ndarray, mag: np.ndarray) -> np.ndarray:
    """Remove one pixel from every 2x2 square of edge pixels, so every line is one pixel thin."""
    # NMS in four direction bins leaves such squares where edges meet or bend sharply; the
    # weakest pixel whose removal keeps its neighbours connected goes. They are rare, hence
    # a Python loop over the squares found.
    edges = edges.copy()
    while True:
        squares = edges[:-1, :-1] & edges[1:, :-1] & edges[:-1, 1:] & edges[1:, 1:]
        removed = False
        for y, x in zip(*np.nonzero(squares), strict=True):
            cells = [(y, x), (y, x + 1), (y + 1, x), (y + 1, x + 1)]
            if not all(edges[c] for c in cells):
                continue  # an earlier removal already opened this square
            for c in sorted(cells, key=lambda c: mag[c]):
                if _simple(edges, *c):
                    edges[c] = False
                    removed = True
                    break
        if not removed:
            return edges


def canny(
    img: np.ndarray,
    sigma: float = 2.0,
    high: float = 0.35,
    low: float = 0.4,
    min_gradient: float = 0.01,
) -> np.ndarray:
    """A thin binary edge map (H, W) of an (H, W) or (H, W, C) image with values in [0, 1]."""
    # high: the fraction of the thinned gradient maxima that seed edges (the strongest ones);
    # low: weaker maxima join an edge they touch when above low x the seed threshold;
    # min_gradient: no edges below it (intensity per pixel), so a flat image stays blank.
    mag, gx, gy = colour_gradient(gaussian_blur(img.astype(np.float32), sigma))
    thin = non_maximum_suppression(mag, gx, gy)
    ridge = thin[thin > min_gradient]
    if ridge.size == 0:
        return np.zeros(mag.shape, dtype=bool)
    # A threshold from the image's own gradients adapts to its contrast and sharpness.
    t_high = max(float(np.quantile(ridge, 1.0 - high)), min_gradient)
    t_low = max(low * t_high, min_gradient)
    return break_squares(hysteresis(thin >= t_high, thin >= t_low), thin)
