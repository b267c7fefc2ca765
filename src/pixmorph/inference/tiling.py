"""Run an image-to-image function over overlapping tiles and blend them without seams."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def _check_int(name: str, value: object, minimum: int) -> int:
    """Return `value` if it is an int >= minimum, else raise a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"translate_tiled: {name} must be an int >= {minimum}, got {value!r}")
    return value


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced tile starts along one axis: neighbours share >= `overlap` px, all inside."""
    if size <= tile:
        return [0]
    # Fewest tiles whose stride is at most tile - overlap; spread evenly rather than pushing all
    # the slack into the last tile, so no tile sits almost on top of its neighbour.
    n = math.ceil((size - tile) / (tile - overlap)) + 1
    return [round(k * (size - tile) / (n - 1)) for k in range(n)]


def _ramp(length: int, overlap: int, scale: int, cut_left: bool, cut_right: bool) -> Tensor:
    """Un-normalised 1-D blend window over the output pixels of a tile `length` input px long."""
    # Next to a cut edge (one inside the image) the first (overlap // 4) * scale output pixels get
    # weight 0, because a conv net's output there sees zero padding instead of the neighbour; the
    # weight then rises along a raised cosine (smooth, so no visible seam) and reaches 1 at
    # overlap / 2 input px from the cut, the middle of a band of exactly `overlap` px.
    dead = (overlap // 4) * scale
    full = overlap * scale / 2
    d = torch.arange(length * scale, dtype=torch.float64) + 0.5  # pixel centres from the left
    w = torch.ones_like(d)
    for cut, dist in ((cut_left, d), (cut_right, length * scale - d)):
        if cut and full > dead:
            u = ((dist - dead) / (full - dead)).clamp(0.0, 1.0)
            w = w * torch.sin(u * (math.pi / 2)) ** 2
    return w


def _axis_windows(size: int, tile: int, overlap: int, scale: int) -> list[tuple[int, Tensor]]:
    """(start, window) per tile along one axis; windows already sum to 1 at every output pixel."""
    length = min(tile, size)
    starts = tile_starts(size, tile, overlap)
    windows = [
        _ramp(length, overlap, scale, cut_left=s > 0, cut_right=s + length < size) for s in starts
    ]
    total = torch.zeros(size * scale, dtype=torch.float64)
    for s, w in zip(starts, windows, strict=True):
        total[s * scale : (s + length) * scale] += w
    # Every output pixel lies at >= overlap/2 px from the cuts of its nearest-centred tile, where
    # that tile's weight is 1, so the total is >= 1 and the division is safe.
    return [
        (s, w / total[s * scale : (s + length) * scale])
        for s, w in zip(starts, windows, strict=True)
    ]


def translate_tiled(
    fn: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, scale: int = 1
) -> Tensor:
    """Apply `fn` ((B, C, h, w) -> (B, C', scale*h, scale*w)) to x over overlapping tiles."""
    # Tiles are `tile` px squares kept inside the image (an axis shorter than `tile` is taken
    # whole) and share at least `overlap` px with each neighbour. Blend weights sum to 1 and are 0
    # within overlap // 4 px of a cut, so a conv net whose receptive-field radius is at most
    # overlap // 4 input px gives the untiled result exactly; smaller overlaps give small,
    # smoothly blended differences. no_grad keeps memory at one tile's activations plus the
    # output (autograd would otherwise hold every tile's graph): this is an inference helper.
    _check_int("tile", tile, 1)
    _check_int("overlap", overlap, 0)
    _check_int("scale", scale, 1)
    if overlap >= tile:
        raise ValueError(
            f"translate_tiled: overlap ({overlap}) must be smaller than tile ({tile}); "
            f"e.g. overlap = tile // 4"
        )
    if x.ndim != 4:
        raise ValueError(f"translate_tiled: x must be (B, C, H, W), got shape {tuple(x.shape)}")
    b, _, h, w = x.shape

    def run(patch: Tensor) -> Tensor:
        out = fn(patch)
        ph, pw = patch.shape[-2:]
        if out.ndim != 4 or out.shape[0] != b or out.shape[-2:] != (ph * scale, pw * scale):
            raise ValueError(
                f"translate_tiled: fn mapped {tuple(patch.shape)} to {tuple(out.shape)}; expected "
                f"({b}, C', {ph * scale}, {pw * scale}); is scale={scale} right?"
            )
        return out

    with torch.no_grad():
        if h <= tile and w <= tile:
            return run(x)
        rows = _axis_windows(h, tile, overlap, scale)
        cols = _axis_windows(w, tile, overlap, scale)
        th, tw = min(tile, h), min(tile, w)
        out: Tensor | None = None
        for y0, wy in rows:
            for x0, wx in cols:
                piece = run(x[:, :, y0 : y0 + th, x0 : x0 + tw].contiguous())  # (B, C', th*s, tw*s)
                if out is None:
                    # Blend in at least fp32 so bf16/fp16 tiles do not lose precision when summed.
                    out_dtype = piece.dtype
                    acc_dtype = torch.promote_types(out_dtype, torch.float32)
                    out = piece.new_zeros(
                        (b, piece.shape[1], h * scale, w * scale), dtype=acc_dtype
                    )
                weight = (wy[:, None] * wx[None, :]).to(out.device, out.dtype)  # (th*s, tw*s)
                ys, xs = y0 * scale, x0 * scale
                out[:, :, ys : ys + th * scale, xs : xs + tw * scale].addcmul_(piece, weight)
        assert out is not None  # at least one tile always runs
        return out.to(out_dtype)
