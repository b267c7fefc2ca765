"""Safe output folders: never the input, never a non-empty folder unless told; file writing."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from pixmorph.data.images import IMAGE_EXTENSIONS, convert_mode
from pixmorph.errors import DataError

log = logging.getLogger(__name__)

FORMATS = {"png": ".png", "jpg": ".jpg"}


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def prepare_output(
    out: str | Path, inputs: Sequence[Path], subdirs: Iterable[str], overwrite: bool
) -> Path:
    """Check `out` is a safe place to write and create `subdirs` in it."""
    out = Path(out)
    real = out.resolve()
    for src in inputs:
        src_real = Path(src).resolve()
        if _inside(real, src_real):
            raise DataError(
                f"output folder {out} is {'the input' if real == src_real else 'inside the input'}"
                f" {src}; choose an output folder outside the input"
            )
        if _inside(src_real, real):
            raise DataError(f"output folder {out} contains the input {src}; choose another output")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {out} is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {out} is not empty; choose an empty or new folder, "
            "or pass --overwrite to replace the images of an earlier run"
        )
    for sub in subdirs:
        folder = out / sub
        if folder.is_dir():  # images of a larger earlier run would otherwise join the new set
            stale = [
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            ]
            for p in stale:
                p.unlink()
            if stale:
                log.info("removed %d image(s) of an earlier run from %s", len(stale), folder)
        folder.mkdir(parents=True, exist_ok=True)
    return out


def save(img: Image.Image, path: Path) -> None:
    """Write an image; JPEG gets high quality and no alpha."""
    if path.suffix == ".jpg":
        if img.mode not in ("RGB", "L"):
            img = convert_mode(img, 3)  # scales 16-bit values rather than clipping them
        img.save(path, quality=95)
    else:
        img.save(path)


def output_suffix(fmt: str) -> str:
    """The file suffix of an output format name."""
    if fmt not in FORMATS:
        raise DataError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt]
