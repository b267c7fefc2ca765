"""Semantic segmentation: an encoder-decoder (SegNet) trained with per-pixel cross-entropy.

Label maps are colour-coded; the palette (one colour a class) comes from the recipe
(`model.palette`) or is derived from the training label maps when the settings are resolved
(`data/palette.py`), so the resolved config (and every checkpoint) holds it. It also travels with
the weights as the `palette` buffer. `translate` gives the colour label map (argmax, then the
class colour); `logits_generator` gives the network itself, (B, 3, H, W) in [-1, 1] -> per-class
logits (B, K, H, W), which `pixmorph export --logits` writes for other tools (docs/segmentation.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from pixmorph.config import Config, ranged
from pixmorph.data.folders import train_folder
from pixmorph.data.labelled import label_folders, palette_sources
from pixmorph.data.layouts import make_dataset
from pixmorph.data.palette import class_colours, derive_palette, nearest_classes, palette_tensor
from pixmorph.errors import ConfigError
from pixmorph.methods.base import Batch, Generator, Method, OptimizerSpec, Panel
from pixmorph.nets.segnet import SegNet

log = logging.getLogger(__name__)


@dataclass
class SegmentationConfig:
    """The segmentation network and its classes."""

    n_classes: int = ranged(0, 0)  # 0: as many as the palette has (derived or given)
    # label colour of each class, [[r, g, b], ...] 0..255; []: derived from the training labels
    palette: list[list[int]] = field(default_factory=list)
    width: int = ranged(32, 1)  # channels at full resolution, doubled at every level
    depth: int = ranged(3, 1, 7)  # max-pool levels; inputs are padded to multiples of 2**depth


class LabelColours(nn.Module):
    """Image (B, C, H, W) -> colour label map (B, 3, H, W) in [-1, 1]: argmax, class colour."""

    def __init__(self, net: nn.Module, palette: Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("palette", palette.clone())  # (K, 3) in [-1, 1]

    def forward(self, x: Tensor) -> Tensor:
        return class_colours(self.net(x).argmax(1), self.palette)


def confusion(pred: Tensor, target: Tensor, n_classes: int) -> Tensor:
    """Per-image confusion counts (B, K, K) [target, prediction] of class maps (B, H, W)."""
    b = pred.shape[0]
    flat = (target.reshape(b, -1) * n_classes + pred.reshape(b, -1)).long()
    counts = torch.zeros(b, n_classes * n_classes, dtype=torch.float64, device=pred.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    return counts.view(b, n_classes, n_classes)


def segmentation_scores(pred: Tensor, target: Tensor, n_classes: int) -> dict[str, Tensor]:
    """Per image (B,): pixel accuracy, mean IoU and the IoU of each class (iou_<k>).

    A class in neither map of an image has no IoU there (NaN); the mean IoU averages the classes
    present in the target or the prediction, and evaluation leaves NaNs out of its means.
    """
    conf = confusion(pred, target, n_classes)
    inter = conf.diagonal(dim1=1, dim2=2)  # (B, K)
    union = conf.sum(2) + conf.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.nan)
    scores = {
        "pixel_acc": inter.sum(1) / conf.sum((1, 2)),
        "miou": iou.nanmean(1),
    }
    return scores | {f"iou_{k}": iou[:, k] for k in range(n_classes)}


class Segmentation(Method):
    """SegNet: image -> per-class logits, cross-entropy against the label map's classes."""

    Config = SegmentationConfig
    # aligned A|B files (label map on the target side), or label folders beside image folders:
    # make_dataset picks the layout by what the data root holds (the "labelled" kind)
    data_kind = "aligned"
    recipe = "segmentation.yaml"
    tiny_settings = {"model": {"width": 8, "depth": 2}}

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        # Adam's usual settings suit a plain cross-entropy; no adversary to keep in balance
        return {"train": {"lr": 1e-3, "beta1": 0.9}}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m, d = cfg.model, cfg.data
        if m.palette:
            bad = [c for c in m.palette if len(c) != 3 or not all(0 <= v <= 255 for v in c)]
            if bad:
                raise ConfigError(f"model.palette: {bad[0]} is not an [r, g, b] colour in 0..255")
            if len({tuple(c) for c in m.palette}) != len(m.palette) or len(m.palette) < 2:
                raise ConfigError("model.palette needs at least 2 colours, each given once")
            if m.n_classes and m.n_classes != len(m.palette):
                raise ConfigError(
                    f"model.n_classes={m.n_classes} but model.palette has {len(m.palette)} "
                    "colours; set n_classes to 0 or to the palette's length"
                )
        elif d.root and Path(d.root).exists():
            folders = label_folders(d.root, True, d.direction)
            images = folders[0] if folders else train_folder(d.root)
            maps = palette_sources(images, folders[1] if folders else None, d.direction)
            m.palette = derive_palette(maps, m.n_classes).tolist()
            log.info("derived %d label colours from %s: %s", len(m.palette), d.root, m.palette)
        # else: no palette yet (a recipe read without data); building the model will say so
        m.n_classes = len(m.palette) if m.palette else m.n_classes
        return cfg

    @classmethod
    def dataset_options(cls, cfg: Config) -> dict[str, Any]:
        return {"palette": cfg.model.palette}

    @classmethod
    def make_dataset(cls, cfg: Config, train: bool, root: str | None = None) -> Dataset:
        return make_dataset("labelled", cfg, train, root, **cls.dataset_options(cfg))

    @classmethod
    def eval_metrics(cls, cfg: Config, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        # both are colour label maps; the output holds palette colours exactly, the target may
        # come from any dataset, so both go through the nearest colour
        palette = palette_tensor(cfg.model.palette)
        pred, target = nearest_classes(fake, palette), nearest_classes(real, palette)
        return segmentation_scores(pred, target, len(palette))

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m = cfg.model
        if not m.palette:
            raise ConfigError(
                "segmentation has no label palette: give data.root (--data) holding label maps "
                "to derive it from, or model.palette ([[r, g, b], ...]) in the recipe"
            )
        self.net = SegNet(cfg.data.in_channels, len(m.palette), m.width, m.depth).to(device)
        self.register_buffer("palette", palette_tensor(m.palette).to(device))  # (K, 3)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"seg": OptimizerSpec(self.net.parameters())}

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        x = batch["a"].to(self.device)  # (B, C, H, W)
        labels = batch["labels"].to(self.device)  # (B, H, W) class indices
        with self.autocast():
            logits = self.parallel(self.net)(x)  # (B, K, H, W)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimize("seg", loss)
        acc = (logits.detach().argmax(1) == labels).float().mean()
        return {"ce": loss.item(), "pixel_acc": acc.item()}

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        x = batch["a"].to(self.device)
        return [{"input": x, "output": self.translate(x), "target": batch["b"]}]

    def _check_direction(self, direction: str | None) -> None:
        if direction not in (None, self.cfg.data.direction):
            raise ConfigError(
                f"this model segments the {self.cfg.data.direction} input side only; "
                f"it has no {direction} network"
            )

    def inference_generator(self, direction: str | None = None) -> Generator:
        self._check_direction(direction)
        module = LabelColours(self.net, self.palette)
        module.train(self.net.training)  # a fresh wrapper must not flip the net's mode
        return Generator(module, self.cfg.data.in_channels, 3, self.net.size_multiple)

    def logits_generator(self, direction: str | None = None) -> Generator:
        self._check_direction(direction)
        k = len(self.cfg.model.palette)
        return Generator(self.net, self.cfg.data.in_channels, k, self.net.size_multiple)
