"""The pixel limit: how many pixels a file may declare before pixmorph decodes it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from pixmorph.errors import DataError

MAX_PIXELS_ENV = "PIXMORPH_MAX_PIXELS"
# A 16384 px square: room for 12000x12000 photos; its float32 RGB tensor alone is 3.2 GB.
DEFAULT_MAX_PIXELS = 16384 * 16384


class ImageTooLarge(DataError):
    """A file declares more pixels than the pixel limit allows (checked before decoding)."""


# --- the pixel limit ---------------------------------------------------------------------------
def pixel_limit(override: int | None = None) -> int:
    """The most pixels (H x W) a file may declare: `override`, else $PIXMORPH_MAX_PIXELS, else
    DEFAULT_MAX_PIXELS."""
    if override is not None:
        if override < 1:
            raise DataError(f"--max-pixels {override}: give a positive number of pixels")
        return int(override)
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))  # 4e8 and 400000000 both work
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{MAX_PIXELS_ENV}={raw!r}: give a positive number of pixels, e.g. 4e8")
    return value


def check_pixels(path: Path, width: int, height: int, limit: int, samples: int = 0) -> None:
    """Raise ImageTooLarge when `width` x `height` (or `samples` > 4 x limit) is over `limit`."""
    if width * height > limit or samples > 4 * limit:
        size = f"{width}x{height} pixels" + (f" ({samples} samples)" if samples else "")
        raise ImageTooLarge(
            f"{path} is {size}, above pixmorph's limit of {limit} pixels ({limit / 1e6:.0f} MP) "
            "for one image; if the file is trusted and memory allows, raise the limit with "
            f"{MAX_PIXELS_ENV}=N (or --max-pixels N on translate)"
        )


@contextmanager
def open_pillow(path: Path, limit: int) -> Iterator[Image.Image]:
    """Image.open with pixmorph's pixel limit checked before any pixel is decoded."""
    saved = Image.MAX_IMAGE_PIXELS
    # Pillow's own check (an error past twice its limit) would stand in front of a raised
    # pixmorph limit, with a message that does not say how to raise it: this check replaces it.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as img:
            check_pixels(path, img.width, img.height, limit)
            yield img
    finally:
        Image.MAX_IMAGE_PIXELS = saved
