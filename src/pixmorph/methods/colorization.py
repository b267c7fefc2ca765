"""Colorization: pix2pix in CIE Lab. G sees L and predicts ab; D judges (L, ab).

Data is any folder of colour images (greyscale files are skipped and counted). A sample is
{"a": the image with its colour removed, "b": the colour image}, both RGB in [-1, 1], so
evaluation, sample grids and translation deal in RGB; the Lab split happens on the device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

import pixmorph.metrics as metrics
from pixmorph.color import greyscale, image_to_lab, lab_to_image
from pixmorph.config import Config
from pixmorph.data.layouts import single
from pixmorph.data.single import SingleDataset
from pixmorph.errors import ConfigError
from pixmorph.methods.base import Batch, Generator
from pixmorph.methods.pix2pix import Pix2Pix, Pix2PixConfig
from pixmorph.nets.factory import size_multiple


class ColourPairs(Dataset):
    """Turns each colour image into {"a": its greyscale version, "b": the image, "path"}."""

    def __init__(self, images: SingleDataset) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        item = self.images[key]
        colour = item["image"]  # (3, H, W)
        return {"a": greyscale(colour[None])[0], "b": colour, "path": item["path"]}


class LabColorizer(nn.Module):
    """RGB or grey (B, 1|3, H, W) in [-1, 1] -> RGB: keeps the input's L, asks `g` for ab."""

    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g = g

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        lum = image_to_lab(x)[:, :1]  # (B, 1, H, W)
        ab = self.g(lum).float()  # (B, 2, H, W)
        return lab_to_image(torch.cat([lum, ab], 1))


class Colorization(Pix2Pix):
    """pix2pix on (L -> ab) with RGB files in and out."""

    Config = Pix2PixConfig
    data_kind = "single"
    recipe = "colorization.yaml"

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        d = cfg.data
        if (d.in_channels, d.out_channels) != (3, 3):
            raise ConfigError(
                "colorization reads colour images and writes RGB: leave data.in_channels and "
                "data.out_channels at 3 (the nets' L -> ab channels are fixed)"
            )
        if d.direction != "AtoB":
            raise ConfigError("colorization has one direction: leave data.direction at AtoB")
        return super().resolve(cfg)

    @classmethod
    def make_dataset(cls, cfg: Config, train: bool, root: str | None = None) -> Dataset:
        # training crops or deterministic evaluation images of colour files, as (grey, colour)
        return ColourPairs(single(cfg, train, root, colour_only=True))

    @classmethod
    def eval_metrics(cls, cfg: Config, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        return {
            "colourfulness": metrics.colourfulness(fake),
            "colourfulness_target": metrics.colourfulness(real),
        }

    def net_channels(self) -> tuple[int, int]:
        return 1, 2  # L in, ab out

    def real_pair(self, batch: Batch) -> tuple[Tensor, Tensor]:
        lab = image_to_lab(batch["b"].to(self.device, non_blocking=True))
        return lab[:, :1], lab[:, 1:]  # (B, 1, H, W) L, (B, 2, H, W) ab

    def inference_generator(self, direction: str | None = None) -> Generator:
        if direction not in (None, "AtoB"):
            raise ConfigError(f"colorization translates grey -> colour (AtoB), not {direction}")
        module = LabColorizer(self.g)
        module.train(self.g.training)  # a fresh wrapper must not flip G's mode when restored
        return Generator(module, 3, 3, size_multiple(self.m.generator.arch))
