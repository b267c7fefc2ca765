"""What an upload may be: its bytes, its type and its pixel count, checked before decoding."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from pixmorph.serving.errors import ServeError

# formats Pillow may open for an upload; anything else (PDF, EPS, ...) is refused unread
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


@dataclass(frozen=True)
class Limits:
    """Bounds on one request; the defaults fit a 24-megapixel photo."""

    max_bytes: int = 32 * 2**20  # upload size
    max_pixels: int = 24_000_000  # width x height, read from the header before decoding
    max_styles: int = 8  # outputs per input of a multimodal model

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1 or self.max_styles < 1:
            raise ValueError(f"serve limits must be positive, got {self}")


def open_upload(data: bytes, limits: Limits, field_name: str = "image") -> Image.Image:
    """Check an upload's bytes, type and header size; the image is opened lazily, not decoded."""
    if not data:
        raise ServeError(400, f"the form field {field_name!r} holds no file; send an image")
    if len(data) > limits.max_bytes:
        raise ServeError(
            413,
            f"the upload is {len(data)} bytes; this server takes at most {limits.max_bytes} "
            "(pixmorph serve --max-upload-mb)",
        )
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning is replaced by the explicit pixel check below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)  # reads the header only
    except Image.DecompressionBombError:
        img = None
    except Exception as e:  # Pillow raises several types for data it cannot identify
        raise ServeError(
            415, f"the upload is not an image of a supported type ({', '.join(IMAGE_FORMATS)})"
        ) from e
    if img is None or img.width * img.height > limits.max_pixels:
        size = "" if img is None else f" ({img.width}x{img.height})"
        raise ServeError(
            413,
            f"the image{size} has more than {limits.max_pixels} pixels; "
            "send a smaller one (pixmorph serve --max-megapixels)",
        )
    return img


def decode(img: Image.Image) -> Image.Image:
    """Decode a lazily opened upload (its size already checked); ServeError if it is broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Exception as e:  # truncated or corrupt data
        raise ServeError(415, f"the image could not be decoded ({e}); is the file complete?") from e
    return img
