"""Finding the images of a dataset folder: splits, names, duplicate stems."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from pixmorph.data.images import IMAGE_EXTENSIONS
from pixmorph.data.limits import open_pillow, pixel_limit
from pixmorph.data.tools.outcome import Report
from pixmorph.errors import DataError


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (hidden files ignored)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def other_files(folder: Path) -> list[Path]:
    """Files directly in `folder` that are not images (hidden files ignored)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTENSIONS
    )


def existing_folder(path: str | Path, what: str) -> Path:
    """`path` as a Path, or a DataError naming the option when it is not a folder."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{what} {p} does not exist")
    if not p.is_dir():
        raise DataError(f"{what} {p} is not a folder")
    return p


def splits(root: Path) -> dict[str, Path]:
    """The image folders of a dataset, keyed by split name ("" for a flat folder)."""
    # A folder holding images is one flat set; otherwise each subfolder with images is a split
    # (train/, test/, ...) that the tools mirror in their output.
    if image_files(root):
        return {"": root}
    found = {
        d.name: d
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".") and image_files(d)
    }
    if not found:
        raise DataError(
            f"no images in {root} nor in its subfolders (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return found


@dataclass
class Named:
    """Images of one folder keyed by stem; later files with a stem already seen are duplicates."""

    by_stem: dict[str, Path] = field(default_factory=dict)
    duplicates: list[Path] = field(default_factory=list)


def by_stem(files: list[Path]) -> Named:
    """Key files by stem: of files sharing a stem (a.jpg, a.png) the first by name is used."""
    named = Named()
    for f in files:
        if f.stem in named.by_stem:
            named.duplicates.append(f)
        else:
            named.by_stem[f.stem] = f
    return named


def decode_file(path: Path) -> Image.Image:
    """Decode a file fully, keeping its mode; a DataError naming the file when that fails."""
    try:
        with open_pillow(path, pixel_limit()) as img:  # the size is checked before decoding
            img.load()
            return img
    except DataError:
        raise
    # Pillow's decoders signal bad data with many types (OSError for truncation, SyntaxError
    # for broken PNG chunks, ValueError, EOFError, ...): all mean the file cannot be used.
    except Exception as e:
        raise DataError(f"{path} is unreadable ({type(e).__name__}: {e})") from e


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a file's header without decoding it; None when it is unreadable."""
    try:
        with open_pillow(path, pixel_limit()) as img:
            return img.size
    except Exception:  # unreadable files are reported when the tool decodes them
        return None


def require_aligned(files: list[Path], root: Path, tool: str) -> None:
    """A DataError unless every readable file is an A|B pair (width = 2 x height), as `check`."""
    wrong = []
    for f in files:
        size = header_size(f)
        if size is not None and size[0] != 2 * size[1]:
            wrong.append(f"{relative(f, root)} ({size[0]}x{size[1]})")
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise DataError(
            f"{tool} cuts aligned A|B images (width = 2 x height) in half, but {len(wrong)} of "
            f"{len(files)} images in {root} are not: {', '.join(wrong[:3])}{more}; "
            "`pixmorph data check` lists them (single images need no unpairing: put them in "
            "trainA/ and trainB/)"
        )


def relative(path: Path, root: Path) -> str:
    """`path` relative to `root` for reports (train/0001.jpg)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def read_or_skip(path: Path, root: Path, report: Report) -> Image.Image | None:
    """The decoded image, or None after noting the file as unreadable in the report."""
    try:
        return decode_file(path)
    except DataError:
        report.skip("unreadable", relative(path, root))
        return None
