"""PNGs Pillow cannot keep whole: 16-bit colour (RGB, RGBA, grey + alpha), read and written by pypng.

Pillow reads 16-bit greyscale PNGs fully but reduces 16-bit colour to 8 bits, and it cannot
write 16-bit colour at all. pypng (pure Python, so a hostile file cannot corrupt memory) reads
and writes PNGs of 8 or 16 bits per sample, grey (1 channel), grey + alpha (2), RGB (3) or RGBA
(4), as (H, W, C) arrays. The image size is checked against a limit before any pixel is decoded.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import png

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}  # PNG colour type -> samples per pixel
_COLOUR_TYPE = {c: t for t, c in _CHANNELS.items()}


class PNGError(ValueError):
    """The file is not a PNG this codec can read (the caller names the file)."""


class PNGTooLarge(PNGError):
    """The header declares more pixels than the caller allows."""

    def __init__(self, width: int, height: int, limit: int) -> None:
        super().__init__(f"{width}x{height} pixels is above the limit of {limit}")
        self.width, self.height, self.limit = width, height, limit


def info(path: str | Path) -> tuple[int, int, int, int] | None:
    """(bit depth, colour type, width, height) from a PNG's header, or None if it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return head[24], head[25], width, height


def header(path: str | Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's header, or None when the file is not a PNG."""
    found = info(path)
    return None if found is None else found[:2]


def read_png(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode an 8/16-bit grey, grey+alpha, RGB or RGBA PNG to (H, W, C).

    With `max_pixels`, a header declaring more pixels raises PNGTooLarge before decoding.
    """
    with open(path, "rb") as f:
        reader = png.Reader(file=f)
        try:
            reader.preamble()  # the chunks up to the first IDAT: size and format, no pixels
            width, height = reader.width, reader.height
            depth, colour = reader.bitdepth, reader.color_type
            if max_pixels is not None and width * height > max_pixels:
                raise PNGTooLarge(width, height, max_pixels)
            if depth not in (8, 16) or colour not in _CHANNELS:
                raise PNGError(f"bit depth {depth} with colour type {colour} is not supported here")
            channels = _CHANNELS[colour]
            out = np.empty((height, width * channels), np.uint16 if depth == 16 else np.uint8)
            _, _, rows, _ = reader.read()
            n = 0
            for n, row in enumerate(rows, 1):  # noqa: B007 (n counts the rows after the loop)
                if n > height:
                    break
                out[n - 1] = row
        except PNGError:
            raise
        # pypng signals bad data with its own errors, zlib.error, ValueError, struct.error,
        # EOFError ...: for a data file they all mean the same thing
        except Exception as e:
            raise PNGError(f"{e}; the file is truncated or corrupt") from e
    if n != height:
        raise PNGError("the image data has too few rows; the file is truncated or corrupt")
    return out.reshape(height, width, channels)


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write (H, W, C) uint8 or uint16 pixels, C in 1..4, as a PNG of that bit depth."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, channels = pixels.shape
    if channels not in _COLOUR_TYPE or pixels.dtype not in (np.uint8, np.uint16):
        raise PNGError(f"cannot write {channels} channels of {pixels.dtype} as PNG")
    writer = png.Writer(
        width,
        height,
        greyscale=channels <= 2,
        alpha=channels in (2, 4),
        bitdepth=16 if pixels.dtype == np.uint16 else 8,
        compression=6,
    )
    with open(path, "wb") as f:
        writer.write(f, pixels.reshape(height, width * channels))
