"""A small PNG codec for what Pillow cannot keep: 16-bit colour (RGB, RGBA, grey + alpha).

Pillow reads 16-bit greyscale PNGs fully but reduces 16-bit colour to 8 bits, and it cannot
write 16-bit colour at all. This module reads and writes non-interlaced PNGs of 8 or 16 bits
per sample, grey (1 channel), grey + alpha (2), RGB (3) or RGBA (4), as (H, W, C) arrays.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}  # PNG colour type -> samples per pixel
_COLOUR_TYPE = {c: t for t, c in _CHANNELS.items()}


class PNGError(ValueError):
    """The file is not a PNG this codec can read (the caller names the file)."""


def header(path: str | Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's header, or None when the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise PNGError("the file is truncated")
        yield kind, body
        pos += 12 + length
        if kind == b"IEND":
            return
    raise PNGError("the file is truncated (no IEND chunk)")


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, height: int, width: int, bpp: int) -> np.ndarray:
    """Undo the per-row filters; returns (H, W, bpp) bytes.

    A byte depends on its left, upper and upper-left neighbours, so all pixels on one
    anti-diagonal (y + x = d) can be reconstructed together: H + W - 1 vector steps.
    """
    rows = raw.reshape(height, 1 + width * bpp)
    kinds = rows[:, 0].astype(np.int64)
    if kinds.max(initial=0) > 4:
        raise PNGError(f"unknown row filter type {int(kinds.max())}")
    filt = rows[:, 1:].reshape(height, width, bpp).astype(np.int64)
    out = np.zeros((height + 1, width + 1, bpp), dtype=np.int64)  # zero row and column pad
    if not kinds.any():
        out[1:, 1:] = filt
    else:
        for d in range(height + width - 1):
            y = np.arange(max(0, d - width + 1), min(height, d + 1))
            x = d - y
            a, b, c = out[y + 1, x], out[y, x + 1], out[y, x]  # left, up, up-left
            k = kinds[y][:, None]
            pred = np.where(
                k == 1,
                a,
                np.where(
                    k == 2, b, np.where(k == 3, (a + b) // 2, np.where(k == 4, _paeth(a, b, c), 0))
                ),
            )
            out[y + 1, x + 1] = (filt[y, x] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


def read_png(path: str | Path) -> np.ndarray:
    """Decode a non-interlaced 8/16-bit grey, grey+alpha, RGB or RGBA PNG to (H, W, C)."""
    data = Path(path).read_bytes()
    if data[:8] != SIGNATURE:
        raise PNGError("not a PNG file")
    ihdr, idat = None, []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            if len(body) != 13:
                raise PNGError("the IHDR chunk is corrupt")
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    if ihdr is None:
        raise PNGError("no IHDR chunk")
    width, height, depth, colour, _, _, interlace = ihdr
    if depth not in (8, 16) or colour not in _CHANNELS:
        raise PNGError(f"bit depth {depth} with colour type {colour} is not supported here")
    if interlace:
        raise PNGError("interlaced 16-bit PNGs are not supported; re-save it without interlacing")
    channels = _CHANNELS[colour]
    bpp = channels * depth // 8
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as e:
        raise PNGError(f"corrupt image data ({e})") from e
    if raw.size != height * (1 + width * bpp):
        raise PNGError("image data has the wrong length; the file is truncated or corrupt")
    pixels = _unfilter(raw, height, width, bpp)  # (H, W, bpp) bytes
    if depth == 16:  # PNG stores samples big-endian
        return pixels.view(">u2").reshape(height, width, channels).astype(np.uint16)
    return pixels.reshape(height, width, channels)


def _filter_rows(pix: np.ndarray, bpp: int) -> np.ndarray:
    """Filter every row with the type of least absolute sum (the usual heuristic)."""
    x = pix.astype(np.int64)  # (H, W*bpp)
    a = np.pad(x, ((0, 0), (bpp, 0)))[:, :-bpp]
    b = np.pad(x, ((1, 0), (0, 0)))[:-1]
    c = np.pad(b, ((0, 0), (bpp, 0)))[:, :-bpp]
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - _paeth(a, b, c)]) & 0xFF
    signed = np.where(candidates > 127, 256 - candidates, candidates)
    best = signed.sum(axis=2).argmin(axis=0)  # (H,)
    rows = candidates[best, np.arange(x.shape[0])].astype(np.uint8)
    return np.concatenate([best.astype(np.uint8)[:, None], rows], axis=1)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write (H, W, C) uint8 or uint16 pixels, C in 1..4, as a PNG of that bit depth."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    if channels not in _COLOUR_TYPE or pixels.dtype not in (np.uint8, np.uint16):
        raise PNGError(f"cannot write {channels} channels of {pixels.dtype} as PNG")
    depth = 16 if pixels.dtype == np.uint16 else 8
    big = pixels.astype(">u2") if depth == 16 else pixels
    bpp = channels * depth // 8
    row_bytes = np.ascontiguousarray(big).view(np.uint8).reshape(height, width * bpp)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, _COLOUR_TYPE[channels], 0, 0, 0)
    body = zlib.compress(_filter_rows(row_bytes, bpp).tobytes(), 6)
    Path(path).write_bytes(
        SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )
