"""A held-out split made on the fly, for data without a test/ or val/ folder.

Each file's side is decided by a seeded hash of its path inside the folder, so the split is
stable whatever order files are listed in and whatever other files come or go: a resumed run
holds out exactly the files it held out before. The run records the held-out names in
RUN/val_split.json, and a resume checks the folder still splits that way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pixmorph.config import Config
from pixmorph.data.folders import train_folder
from pixmorph.data.images import list_images
from pixmorph.errors import ConfigError

log = logging.getLogger(__name__)

SplitPart = Literal["all", "train", "held_out"]
SPLIT_FILE = "val_split.json"
EVAL_FOLDERS = ("test", "val")


def has_eval_folder(root: str | Path) -> bool:
    """Whether a data root holds its own evaluation split (test/ or val/)."""
    return any(Path(root, name).is_dir() for name in EVAL_FOLDERS)


def split_part(cfg: Config, train: bool, root: str | None = None) -> SplitPart:
    """Which part of the training folder a dataset reads under data.val_fraction.

    The split belongs to the training root: another folder (`pixmorph evaluate --data SET5`)
    is read whole.
    """
    r = root or cfg.data.root
    if cfg.data.val_fraction <= 0 or not r or has_eval_folder(r):
        return "all"
    if root and (not cfg.data.root or Path(root).resolve() != Path(cfg.data.root).resolve()):
        return "all"
    return "train" if train else "held_out"


def file_draw(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by the file's name and the seed."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out_names(names: Sequence[str], fraction: float, seed: int) -> set[str]:
    """The names a fraction of them holds out: those whose draw falls under `fraction`.

    At least one is held out and at least one kept (when there are two or more), so a tiny
    folder still has something to evaluate on and something to train on.
    """
    if fraction <= 0 or not names:
        return set()
    out = {n for n in names if file_draw(n, seed) < fraction}
    ranked = sorted(names, key=lambda n: file_draw(n, seed))
    if not out:
        out = {ranked[0]}
    if len(out) == len(names) and len(names) > 1:
        out.discard(ranked[-1])
    return out


def select(
    files: list[Path], folder: str | Path, part: SplitPart, fraction: float, seed: int
) -> list[Path]:
    """The files of one part of a folder's split (all of them for part "all")."""
    if part == "all":
        return files
    names = [f.relative_to(folder).as_posix() for f in files]
    held = held_out_names(names, fraction, seed)
    want = part == "held_out"
    return [f for f, n in zip(files, names, strict=True) if (n in held) == want]


def record_split(cfg: Config, run_root: str | Path) -> list[str] | None:
    """Write the run's held-out names to RUN/val_split.json, or check them on a resume."""
    if split_part(cfg, train=False) == "all":
        return None
    folder = train_folder(cfg.data.root)
    names = [f.relative_to(folder).as_posix() for f in list_images(folder)]
    held = sorted(held_out_names(names, cfg.data.val_fraction, cfg.train.seed))
    path = Path(run_root) / SPLIT_FILE
    record = {"fraction": cfg.data.val_fraction, "seed": cfg.train.seed, "held_out": held}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("held_out") != held:
            raise ConfigError(
                f"{path} records a different held-out split than {folder} gives now (files "
                "were renamed, or data.val_fraction or train.seed changed); restore them, or "
                "start a new run"
            )
        return held
    path.write_text(json.dumps(record, indent=1) + "\n")
    log.info("held out %d of %d images of %s for evaluation", len(held), len(names), folder)
    return held
