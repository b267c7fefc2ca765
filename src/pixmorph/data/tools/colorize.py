"""The greyscale -> colour paired set for colorization: A = the photo in grey, B = the photo."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from pixmorph.data.images import convert_mode, is_greyscale
from pixmorph.data.pixels import pil_to_array
from pixmorph.data.tools.derive import Skip, write_derived
from pixmorph.data.tools.outcome import Report, Track, untracked

# JPEG chroma noise leaves grey photos a few levels off grey: allow 6 of 255
GREY_TOLERANCE = 6 / 255


def is_grey_photo(img: Image.Image) -> bool:
    """True for grey files and for colour files whose pixels are (nearly) all grey."""
    return is_greyscale(pil_to_array(img), GREY_TOLERANCE)


def grey_pair(photo: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(grey as RGB, colour) of a colour photo; Skip for a greyscale one."""
    if is_grey_photo(photo):
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
