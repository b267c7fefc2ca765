"""Reading, converting and writing image files, with errors that name the file.

Files decode to NumPy arrays (H, W, C) in their own sample type, so the bit depth is known:
uint8 (0..255), uint16 (0..65535) or float32 (0..1). `to_tensor` maps that full range to the
model's [-1, 1]; `save_image` maps back to a chosen sample type. Formats: anything Pillow reads
(8-bit, 16-bit grey), 16-bit colour PNG (png16.py), TIFF with any number of pages or samples
(tiff.py) and NumPy `.npy` arrays (H, W) or (H, W, C) for any channel count.

Every reader checks the image size against a pixel limit before decoding (`pixel_limit`), so a
small file that declares a huge image fails with a clear error instead of exhausting memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from pixmorph.data import png16, tiff
from pixmorph.data.limits import (
    check_pixels,
    open_pillow,
    pixel_limit,
)
from pixmorph.data.pixels import check_float, pil_to_array
from pixmorph.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".npy")
TIFF_SUFFIXES = (".tif", ".tiff")
PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, Pillow's RGB -> L weights


def _npy_shape(p: Path) -> tuple[int, ...]:
    """The shape a .npy file declares, read from its header only."""
    with open(p, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(f)
    return shape


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name; a clear error when there are none."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    files = sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise DataError(
            f"no images in {root} (looked for {', '.join(IMAGE_EXTENSIONS)}); "
            "point --data at a folder of images or a root holding train/"
        )
    return files


# --- decoding to arrays ----------------------------------------------------------------------
def array_pixels(arr: np.ndarray) -> np.ndarray:
    """An array from a .npy or TIFF file as (H, W, C) uint8, uint16 or float32."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            f"array of shape {arr.shape} is not an image; expected (H, W) or (H, W, C)"
        )
    if arr.dtype in (np.uint8, np.uint16):
        return arr
    if arr.dtype.kind == "f":
        return check_float(arr)
    raise ValueError(
        f"sample type {arr.dtype} is not supported; store uint8 (0..255), uint16 (0..65535) "
        "or floats in 0..1"
    )


def _decode(p: Path, limit: int) -> np.ndarray:
    suffix = p.suffix.lower()
    if suffix == ".npy":
        shape = _npy_shape(p)
        if len(shape) >= 2:
            check_pixels(p, shape[1], shape[0], limit, int(np.prod(shape, dtype=np.float64)))
        try:
            arr = np.load(p, allow_pickle=False)  # never unpickle: a data file must not run code
        except ValueError as e:
            if "pickle" in str(e):
                raise ValueError("holds Python objects; save a plain numeric array") from e
            raise
        return array_pixels(arr)
    if suffix in TIFF_SUFFIXES:
        try:
            return array_pixels(tiff.read_tiff(p, limit))
        except tiff.TIFFTooLarge as e:
            check_pixels(p, e.width, e.height, limit, e.samples)
            raise
    if suffix == ".png":
        head = png16.info(p)
        if head is not None:
            check_pixels(p, head[2], head[3], limit)
        if head is not None and head[0] == 16 and head[1] != 0:  # Pillow would drop to 8 bits
            return png16.read_png(p, limit)
    with open_pillow(p, limit) as img:
        img.load()
        return pil_to_array(img)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file fully to (H, W, C) in its own sample type; DataError names the file.

    Files declaring more than `pixel_limit(max_pixels)` pixels raise ImageTooLarge undecoded.
    """
    p = Path(path)
    try:
        return _decode(p, pixel_limit(max_pixels))
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError(f"image {p} does not exist") from e
    except UnidentifiedImageError as e:
        raise DataError(f"{p} is not a readable image") from e
    except (ValueError, EOFError, SyntaxError) as e:  # codec errors, bad arrays, pickled .npy
        raise DataError(f"{p}: {e}") from e
    except OSError as e:  # truncated or corrupt data
        raise DataError(f"{p} could not be decoded ({e}); the file is truncated or corrupt") from e
    # decoders signal other broken data with still other types (struct.error, IndexError, ...)
    except Exception as e:
        raise DataError(
            f"{p} could not be decoded ({type(e).__name__}: {e}); the file is truncated or corrupt"
        ) from e


def is_greyscale(pixels: np.ndarray, tolerance: float = 3 / 255) -> bool:
    """True for 1-2 channel images, and for colour ones whose channels agree almost everywhere."""
    c = pixels.shape[2]
    if c in (1, 2):
        return True
    if c not in (3, 4):
        return False
    rgb = pixels[:, :, :3].astype(np.float32) / PEAK[pixels.dtype]
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    # a quantile, not the max: a few stray compression artefacts do not make an image colour
    return float(np.quantile(spread, 0.99)) <= tolerance


# --- arrays <-> tensors ----------------------------------------------------------------------
def to_tensor(img: Image.Image | np.ndarray) -> Tensor:
    """A Pillow image or (H, W[, C]) array -> float tensor (C, H, W), full range -> [-1, 1]."""
    arr = pil_to_array(img) if isinstance(img, Image.Image) else img
    if arr.ndim == 2:
        arr = arr[:, :, None]
    peak = PEAK.get(arr.dtype)
    if peak is None:
        raise DataError(f"cannot use pixels of type {arr.dtype} (uint8, uint16 or float32)")
    # planar float32 in one copy; the later ops then run on contiguous memory
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))
    return t.mul_(2.0 / peak).sub_(1.0)


def from_tensor(t: Tensor, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Tensor (C, H, W) in [-1, 1] -> (H, W, C) array of `dtype` spanning its full range."""
    dt = np.dtype(dtype)
    if dt not in PEAK:
        raise DataError(f"cannot write pixels of type {dt} (uint8, uint16 or float32)")
    # one float copy, then in place: a 12000x12000 RGB image is 1.7 GB per float copy
    x = t.detach().float().cpu().clamp(-1, 1).add_(1.0).mul_(PEAK[dt] / 2.0)
    arr = x.permute(1, 2, 0).numpy()
    return arr.astype(np.float32) if dt == np.float32 else np.round(arr, out=arr).astype(dt)


def match_channels(x: Tensor, channels: int, name: str, option: str = "data.in_channels") -> Tensor:
    """Bring (C, H, W) to `channels`: grey/grey+alpha/RGB/RGBA convert as Pillow would, N stays N."""
    c = x.shape[0]
    if c == channels:
        return x
    if not (1 <= c <= 4 and 1 <= channels <= 4):
        raise DataError(
            f"{name} has {c} channels but {option} is {channels}; set {option} to the "
            "files' channel count (only grey, grey+alpha, RGB and RGBA convert into each other)"
        )
    if c >= 3:
        w = torch.tensor(LUMA, dtype=x.dtype).view(3, 1, 1)
        grey = (x[:3] * w).sum(0, keepdim=True)
        rgb = x[:3]
    else:
        grey = x[:1]
        rgb = grey.expand(3, -1, -1)
    alpha = x[-1:] if c in (2, 4) else torch.ones_like(grey)
    out = {1: grey, 2: torch.cat([grey, alpha]), 3: rgb, 4: torch.cat([rgb, alpha])}[channels]
    return out.contiguous()


def check_channels(path: Path, c: int, channels: int, option: str) -> None:
    """Fail early, at dataset start, when a file cannot give the channels a model needs."""
    if c != channels and not (1 <= c <= 4 and 1 <= channels <= 4):
        raise DataError(
            f"{path} has {c} channels but {option} is {channels}; set {option} to the "
            "files' channel count (only grey, grey+alpha, RGB and RGBA convert into each other)"
        )


# --- writing ----------------------------------------------------------------------------------
def save_image(t: Tensor, path: str | Path, dtype: np.dtype | type = np.uint8) -> None:
    """Write (C, H, W) in [-1, 1]: .png (8/16-bit, 1-4 ch), .tif (any), .npy (any), others 8-bit."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pixels = from_tensor(t, dtype)
    c = pixels.shape[2]
    suffix = p.suffix.lower()
    if suffix == ".npy":
        np.save(p, pixels)
    elif suffix in TIFF_SUFFIXES:
        try:
            tiff.write_tiff(p, pixels)
        except tiff.TIFFError as e:
            raise DataError(f"{p}: {e}") from e
    elif suffix == ".png" and pixels.dtype == np.uint16 and 1 <= c <= 4:
        png16.write_png(p, pixels)
    elif pixels.dtype == np.uint8 and 1 <= c <= 4:
        modes = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
        Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, modes[c]).save(p)
    else:
        raise DataError(
            f"{p}: cannot write {c} channels of {pixels.dtype} as {suffix or 'no suffix'}; "
            "use .npy or .tif for other channel counts and bit depths"
        )


def preview(t: Tensor) -> Tensor:
    """A viewable version of (C, H, W): 1, 3, 4 channels as they are, 2 padded, >4 the first 3."""
    c = t.shape[0]
    if c == 2:
        return torch.cat([t, torch.full_like(t[:1], -1.0)])
    return t[:3] if c > 4 else t


# --- 8-bit Pillow helpers (display, demo, tools) -------------------------------------------------
def open_image(path: str | Path, channels: int = 3, max_pixels: int | None = None) -> Image.Image:
    """Decode an image fully as an 8-bit Pillow image of `channels` (1: L, 3: RGB, 4: RGBA)."""
    p = Path(path)
    if p.suffix.lower() == ".npy" or p.suffix.lower() in TIFF_SUFFIXES:
        x = match_channels(to_tensor(read_image(p, max_pixels)), channels, str(p), "channels")
        return to_pil(x)
    try:
        with open_pillow(p, pixel_limit(max_pixels)) as img:
            img.load()
            return convert_mode(img, channels)
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError(f"image {p} does not exist") from e
    except UnidentifiedImageError as e:
        raise DataError(f"{p} is not a readable image") from e
    except (ValueError, EOFError, SyntaxError) as e:  # codec errors
        raise DataError(f"{p}: {e}") from e
    except OSError as e:  # truncated or corrupt data
        raise DataError(f"{p} could not be decoded ({e}); the file is truncated or corrupt") from e


def convert_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert greyscale, palette, RGBA and 16-bit images to the channel count a model expects."""
    if channels not in (1, 3, 4):
        raise DataError(f"cannot convert images to {channels} channels (1, 3 or 4 are supported)")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # the full 16-bit or float range maps to 0..255 (never a guessed peak)
        return to_pil(match_channels(to_tensor(img), channels, "image", "channels"))
    if channels == 1:
        return img if img.mode == "L" else img.convert("RGB").convert("L")
    want = {3: "RGB", 4: "RGBA"}[channels]
    return img if img.mode == want else img.convert(want)


def to_pil(t: Tensor) -> Image.Image:
    """Tensor (C, H, W) in [-1, 1] -> 8-bit Pillow image (1: L, 2: LA, 3: RGB, 4: RGBA)."""
    arr = from_tensor(t, np.uint8)
    c = arr.shape[2]
    if c == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    if c in (2, 3, 4):
        return Image.fromarray(arr, {2: "LA", 3: "RGB", 4: "RGBA"}[c])
    raise DataError(f"cannot write a {c}-channel tensor as an image file")
