"""The edges -> photo paired set (like edges2shoes): A = thin binary edge map, B = the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pixmorph.data.images import convert_mode
from pixmorph.data.tools.canny import canny
from pixmorph.data.tools.derive import write_derived
from pixmorph.data.tools.outcome import Report, Track, untracked
from pixmorph.errors import DataError


def edge_image(
    photo: Image.Image,
    sigma: float = 2.0,
    high: float = 0.35,
    low: float = 0.4,
    white_on_black: bool = False,
) -> Image.Image:
    """The Canny edge map of a photo as an RGB image: black lines on white by default."""
    rgb = np.asarray(convert_mode(photo, 3), dtype=np.float32) / 255.0  # (H, W, 3)
    edges = canny(rgb, sigma=sigma, high=high, low=low)
    ink, paper = (255, 0) if white_on_black else (0, 255)
    grey = np.where(edges, ink, paper).astype(np.uint8)
    # RGB rather than L so the edge half and the photo half share one aligned file's mode.
    return Image.fromarray(grey, "L").convert("RGB")


def edges(
    in_dir: str | Path,
    out: str | Path,
    *,
    sigma: float = 2.0,
    high: float = 0.35,
    low: float = 0.4,
    white_on_black: bool = False,
    fmt: str = "png",
    overwrite: bool = False,
    track: Track = untracked,
) -> Report:
    """Write OUT/x = edges(IN/x) | IN/x for every photo, mirroring IN's train/ test/ splits."""
    if sigma < 0 or not 0 < high <= 1 or not 0 < low <= 1:
        raise DataError(
            f"edges: sigma={sigma}, high={high}, low={low}; need sigma >= 0 and high, low in (0, 1]"
        )

    def derive(photo: Image.Image) -> tuple[Image.Image, Image.Image]:
        rgb = convert_mode(photo, 3)
        return edge_image(rgb, sigma, high, low, white_on_black), rgb

    return write_derived("edges", in_dir, out, derive, fmt=fmt, overwrite=overwrite, track=track)
