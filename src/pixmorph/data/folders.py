"""Which folder of a data root serves training and which serves evaluation."""

from __future__ import annotations

from pathlib import Path

from pixmorph.errors import DataError


def train_folder(root: str | Path, name: str = "train") -> Path:
    """`root/train` when present, else `root` itself."""
    r = Path(root)
    if not str(root):
        raise DataError("no data given: pass --data DIR (a folder of images or a root with train/)")
    if not r.exists():
        raise DataError(f"data folder {r} does not exist")
    return r / name if (r / name).is_dir() else r


def eval_folder(root: str | Path, names: tuple[str, ...] = ("test", "val")) -> Path:
    """`root/test` or `root/val` when present, else `root` itself."""
    r = Path(root)
    if not r.exists():
        raise DataError(f"data folder {r} does not exist")
    for name in names:
        if (r / name).is_dir():
            return r / name
    return r
