"""The one place that maps (data kind, split) to a dataset.

Data kinds:
- aligned: files holding A and B side by side (`root/train/`, `root/test/` or a flat folder).
- unaligned: two domains, `root/trainA/` and `root/trainB/` (or data.root_a / data.root_b);
  evaluation uses aligned `test/` pairs when present, else `testA/`+`testB/` (or the train ones).
- single: one image per file (colour photos, a folder of faces, ...).
- hr: high-resolution images; the low-resolution input is made by bicubic downscaling.
- labelled: images with colour-coded label maps (segmentation), in either of two layouts:
  aligned A|B files whose target half is the label map, or an image folder with a label folder
  matched by file stem (`trainA/` + `labelA/`, `testA/` + `testlabelA/`; see data/labelled.py).
  It needs the label palette (K, 3), so a method passes `palette` in its dataset_options.
- none: no data at all (a method that generates from noise and trains on nothing).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from pixmorph.config import Config
from pixmorph.data.aligned import AlignedDataset
from pixmorph.data.folders import eval_folder, train_folder
from pixmorph.data.hr import HRDataset
from pixmorph.data.labelled import AlignedLabelDataset, LabelFolderDataset, label_folders
from pixmorph.data.load_options import LoadOptions
from pixmorph.data.single import SingleDataset
from pixmorph.data.unaligned import UnalignedDataset, domain_folders, has_domains
from pixmorph.data.val_split import split_part
from pixmorph.errors import ConfigError, DataError

DataKind = Literal["aligned", "unaligned", "single", "hr", "labelled", "none"]
DATA_KINDS: tuple[str, ...] = ("aligned", "unaligned", "single", "hr", "labelled", "none")


def split_folder(cfg: Config, train: bool, root: str | None) -> Path:
    """The folder of one split: `root/train` for training, `root/test` or `root/val` else.

    Under data.val_fraction (no test/ or val/ folder) evaluation reads the training folder's
    held-out part.
    """
    r = root or cfg.data.root
    if train or split_part(cfg, train, root) == "held_out":
        return train_folder(r)
    return eval_folder(r)


def aligned(cfg: Config, train: bool, root: str | None = None) -> AlignedDataset:
    """Paired files: training crops, or deterministic resized evaluation images."""
    d = cfg.data
    return AlignedDataset(
        split_folder(cfg, train, root),
        direction=d.direction,
        in_channels=d.in_channels,
        out_channels=d.out_channels,
        options=LoadOptions.of(cfg, train, root),
    )


def unaligned_folders(cfg: Config, folder_a: Path, folder_b: Path, train: bool) -> UnalignedDataset:
    """Two domains; both directions always train, so only evaluation follows data.direction."""
    d = cfg.data
    return UnalignedDataset(
        folder_a,
        folder_b,
        a_channels=d.in_channels,
        b_channels=d.out_channels,
        direction=d.direction if not train else "AtoB",
        options=LoadOptions.of(cfg, train),
    )


def unaligned(cfg: Config, train: bool, root: str | None = None) -> Dataset:
    """Training domains; for evaluation, aligned test pairs where there are any, else domains.

    With `data.direction=BtoA` the input is domain B, so the channel counts swap too.
    """
    d = cfg.data
    r = root or d.root
    if d.val_fraction > 0:
        raise ConfigError(
            "data.val_fraction holds out pairs for evaluation; unaligned domains have none: "
            "set data.val_fraction=0 and give test/ pairs (or testA/ testB/) to evaluate on"
        )
    if train:
        return unaligned_folders(cfg, *domain_folders(r, d.root_a, d.root_b, "train"), train=True)
    if r and not Path(r, "test").is_dir() and not Path(r, "val").is_dir():
        for split in ("test", "train"):
            if has_domains(r, split):
                return unaligned_folders(cfg, *domain_folders(r, split=split), train=False)
    if not r and d.root_a and d.root_b:
        return unaligned_folders(cfg, Path(d.root_a), Path(d.root_b), train=False)
    if not r:
        raise DataError("no evaluation data: pass --data ROOT (holding test/ or testA/ testB/)")
    paired = replace(cfg)
    if d.direction == "BtoA":  # the aligned dataset converts "a" to in_channels
        paired.data = replace(d, in_channels=d.out_channels, out_channels=d.in_channels)
    return aligned(paired, train=False, root=str(eval_folder(r)))


def single(
    cfg: Config, train: bool, root: str | None = None, colour_only: bool = False
) -> SingleDataset:
    """One image a file, {"image", "path"}; colour_only leaves greyscale files out."""
    return SingleDataset(
        split_folder(cfg, train, root),
        channels=cfg.data.in_channels,
        colour_only=colour_only,
        options=LoadOptions.of(cfg, train, root),
    )


def hr(cfg: Config, train: bool, root: str | None = None, scale: int = 4) -> HRDataset:
    """HR crops (training) or whole modcropped HR images (evaluation), LR made by bicubic."""
    return HRDataset(
        split_folder(cfg, train, root),
        scale=scale,
        channels=cfg.data.in_channels,
        options=LoadOptions.of(cfg, train, root),
    )


def labelled(cfg: Config, train: bool, root: str | None = None, palette: Any = None) -> Dataset:
    """Images with label maps: label folders where the root has them, else aligned A|B files."""
    if palette is None or len(palette) == 0:
        raise ConfigError("labelled data needs the label palette (model.palette) to read labels")
    d = cfg.data
    r = root or d.root
    options = LoadOptions.of(cfg, train)
    folders = label_folders(r, train, d.direction) if r else None
    if folders is None and not train and r:  # no test labels: evaluate on the training ones
        folders = label_folders(r, True, d.direction) if not has_split(r) else None
    if folders is not None:
        return LabelFolderDataset(*folders, palette, in_channels=d.in_channels, options=options)
    return AlignedLabelDataset(split_folder(cfg, train, root), palette, direction=d.direction,
                               in_channels=d.in_channels, options=options)  # fmt: skip


def has_split(root: str | Path) -> bool:
    """Whether a root holds an evaluation split of aligned files (test/ or val/)."""
    return any(Path(root, name).is_dir() for name in ("test", "val"))


_BUILDERS: dict[str, Any] = {
    "aligned": aligned,
    "unaligned": unaligned,
    "single": single,
    "hr": hr,
    "labelled": labelled,
}


def make_dataset(
    kind: str, cfg: Config, train: bool, root: str | None = None, **options: Any
) -> Dataset:
    """The dataset of a data kind for training (train=True) or evaluation."""
    if kind == "none":
        raise ConfigError(f"method {cfg.method} trains on no data: it has no dataset")
    try:
        build = _BUILDERS[kind]
    except KeyError:
        raise ConfigError(f"unknown data kind {kind!r}; one of {', '.join(DATA_KINDS)}") from None
    return build(cfg, train, root, **options)
