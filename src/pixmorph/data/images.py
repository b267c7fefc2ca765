"""Reading, converting and writing image files, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DataError(ValueError):
    """A data file or folder is missing, unreadable or of the wrong shape."""


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


def open_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Decode an image fully and convert it to `channels` (1: L, 3: RGB, 4: RGBA)."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            return convert_mode(img, channels)
    except FileNotFoundError as e:
        raise DataError(f"image {p} does not exist") from e
    except UnidentifiedImageError as e:
        raise DataError(f"{p} is not a readable image") from e
    except OSError as e:  # truncated or corrupt data
        raise DataError(f"{p} could not be decoded ({e}); the file is truncated or corrupt") from e


def convert_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert greyscale, palette, RGBA and 16-bit images to the channel count a model expects."""
    if channels == 1:
        return img if img.mode == "L" else img.convert("RGB").convert("L")
    if channels == 3:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16-bit greyscale: scale to 8 bits before colour conversion
            arr = np.asarray(img, dtype=np.float64)
            peak = 65535.0 if arr.max() > 255 else 255.0
            img = Image.fromarray((arr / peak * 255).round().astype(np.uint8), "L")
        return img if img.mode == "RGB" else img.convert("RGB")
    if channels == 4:
        return img if img.mode == "RGBA" else img.convert("RGBA")
    raise DataError(f"cannot convert images to {channels} channels (1, 3 or 4 are supported)")


def to_tensor(img: Image.Image) -> Tensor:
    """PIL image -> float tensor (C, H, W) in [-1, 1]."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1)
    return t / 127.5 - 1.0


def to_pil(t: Tensor) -> Image.Image:
    """Tensor (C, H, W) in [-1, 1] -> 8-bit PIL image (1 channel: L, 3: RGB, 4: RGBA)."""
    t = t.detach().float().cpu().clamp(-1, 1)
    arr = ((t + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    if arr.shape[2] == 3:
        return Image.fromarray(arr, "RGB")
    if arr.shape[2] == 4:
        return Image.fromarray(arr, "RGBA")
    raise DataError(f"cannot write a {arr.shape[2]}-channel tensor as an image file")


def save_image(t: Tensor, path: str | Path) -> None:
    """Write a (C, H, W) tensor in [-1, 1] as an image file (format from the suffix)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    to_pil(t).save(p)
