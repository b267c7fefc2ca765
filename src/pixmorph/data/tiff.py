"""TIFF files as (H, W, C) arrays: every page and sample becomes a channel.

tifffile (the `[tiff]` extra) reads multi-page, planar, 16-bit and float TIFFs. Without it,
Pillow reads the simple cases (one page of grey, RGB or RGBA) and anything else is refused
with a hint to install the extra, rather than read wrongly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pixmorph.data.limits import open_pillow
from pixmorph.data.pixels import pil_to_array

INSTALL_HINT = "install the TIFF support with: pip install 'pixmorph[tiff]'"


class TIFFError(ValueError):
    """The TIFF cannot be read or written as asked (the caller names the file)."""


class TIFFTooLarge(TIFFError):
    """A page declares more pixels (or the pages more samples) than the caller allows."""

    def __init__(self, width: int, height: int, samples: int, limit: int) -> None:
        super().__init__(f"{width}x{height} pixels ({samples} samples) is above {limit} pixels")
        self.width, self.height, self.samples = width, height, samples


def _tifffile():
    try:
        import tifffile
    except ImportError:
        return None
    return tifffile


def _page_hwc(arr: np.ndarray, axes: str) -> np.ndarray:
    """Move a page's Y and X axes to the front and fold the rest into channels."""
    if "Y" not in axes or "X" not in axes:
        raise TIFFError(f"a page with axes {axes!r} has no Y/X image plane")
    order = [axes.index("Y"), axes.index("X")] + [i for i, a in enumerate(axes) if a not in "YX"]
    arr = np.transpose(arr, order)
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def _check_page_sizes(pages, limit: int | None) -> None:
    """TIFFTooLarge when a page has more than `limit` pixels or all pages > 4 x limit samples."""
    if limit is None:
        return
    samples = 0
    for page in pages:
        width, height = int(page.imagewidth), int(page.imagelength)
        samples += int(np.prod(page.shape, dtype=np.float64))
        if width * height > limit or samples > 4 * limit:
            raise TIFFTooLarge(width, height, samples, limit)


def read_tiff(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """All pages of a TIFF stacked along channels: (H, W, C), in the file's sample type.

    With `max_pixels`, sizes are checked from the page headers before any page is decoded.
    """
    tifffile = _tifffile()
    if tifffile is None:
        return _read_with_pillow(path, max_pixels)
    try:
        with tifffile.TiffFile(path) as tf:
            _check_page_sizes(tf.pages, max_pixels)
            planes = [_page_hwc(page.asarray(), page.axes) for page in tf.pages]
    except TIFFError:
        raise
    except Exception as e:  # tifffile raises many kinds for broken files
        raise TIFFError(f"could not be decoded as TIFF ({e})") from e
    if not planes:
        raise TIFFError("the TIFF has no pages")
    sizes = {p.shape[:2] for p in planes}
    if len(sizes) > 1:
        raise TIFFError(
            f"its pages differ in size ({sorted(sizes)}); pixmorph reads the pages of a TIFF as "
            "channels of one image, so they must all be the same size"
        )
    return planes[0] if len(planes) == 1 else np.concatenate(planes, axis=2)


def _read_with_pillow(path: str | Path, max_pixels: int | None) -> np.ndarray:
    with open_pillow(Path(path), max_pixels or 2**62) as img:
        samples = img.tag_v2.get(277, 1) if hasattr(img, "tag_v2") else 1
        if getattr(img, "n_frames", 1) > 1 or samples != len(img.getbands()):
            raise TIFFError(f"has several pages or planes; {INSTALL_HINT}")
        img.load()
        return pil_to_array(img)


def write_tiff(path: str | Path, pixels: np.ndarray) -> None:
    """Write (H, W, C): grey, RGB or RGBA as one page, other channel counts as one page each."""
    channels = pixels.shape[2]
    tifffile = _tifffile()
    if tifffile is None:
        if pixels.dtype != np.uint8 or channels not in (1, 3, 4):
            raise TIFFError(
                f"writing {channels} channels of {pixels.dtype} needs tifffile; {INSTALL_HINT}"
            )
        Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels).save(path)
        return
    if channels == 3:
        tifffile.imwrite(path, pixels, photometric="rgb")
    elif channels == 4:
        tifffile.imwrite(path, pixels, photometric="rgb", extrasamples=["unassalpha"])
    elif channels == 1:
        tifffile.imwrite(path, pixels[:, :, 0], photometric="minisblack")
    else:  # (C, H, W) pages, the layout multi-band TIFFs commonly use
        tifffile.imwrite(path, np.moveaxis(pixels, 2, 0), photometric="minisblack")
