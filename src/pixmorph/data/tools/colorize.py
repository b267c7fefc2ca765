"""The greyscale -> colour paired set for colorization: A = the photo in grey, B = the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pixmorph.data.images import convert_mode
from pixmorph.data.tools.derive import Skip, write_derived
from pixmorph.data.tools.report import Report, Track, untracked

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
GREY_SPREAD = 6  # max - min over R, G, B (of 255) below which a pixel counts as grey
GREY_SHARE = 0.995  # an image is grey when at least this share of its pixels are


def is_greyscale(img: Image.Image) -> bool:
    """True for grey modes and for colour files whose pixels are (nearly) all grey."""
    if img.mode in GREY_MODES:
        return True
    rgb = np.asarray(convert_mode(img, 3), dtype=np.int16)  # (H, W, 3)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    # A share, not every pixel: JPEG chroma noise puts a few off-grey pixels in grey photos.
    return float((spread <= GREY_SPREAD).mean()) >= GREY_SHARE


def grey_pair(photo: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(grey as RGB, colour) of a colour photo; Skip for a greyscale one."""
    if is_greyscale(photo):
        raise Skip("greyscale input")
    rgb = convert_mode(photo, 3)
    # ITU-R 601 luma, repeated in R, G and B so both halves share the file's RGB mode.
    return rgb.convert("L").convert("RGB"), rgb


def colorize(
    in_dir: str | Path,
    out: str | Path,
    *,
    fmt: str = "png",
    overwrite: bool = False,
    track: Track = untracked,
) -> Report:
    """Write OUT/x = grey(IN/x) | IN/x for every colour photo; greyscale ones are skipped."""
    return write_derived(
        "colorize", in_dir, out, grey_pair, fmt=fmt, overwrite=overwrite, track=track
    )
