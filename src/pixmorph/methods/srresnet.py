"""SRResNet: single-image super-resolution trained with a pixel loss (SRGAN's first phase)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

import pixmorph.metrics as metrics
from pixmorph.config import Config
from pixmorph.data.hr import bicubic_upscale
from pixmorph.errors import ConfigError
from pixmorph.methods.base import Baseline, Batch, Flag, Generator, Method, OptimizerSpec, Panel
from pixmorph.nets.srresnet import SCALES, SRResNet

VISUAL_LR = 48  # sample grids show at most this many LR px per side (whole images are slow)


@dataclass
class SRResNetConfig:
    """SRResNet settings; defaults are the published ones (x4, 64 features, 16 blocks, MSE)."""

    scale: int = 4  # 2, 3, 4 or 8
    n_feats: int = 64
    n_blocks: int = 16
    pixel_loss: Literal["mse", "l1"] = "mse"
    # off the published path, for short CPU budgets (docs/quality.md): batch norm in the blocks
    # (off: EDSR-style plain residual blocks), the upsampler ("stages" or "direct", see
    # nets/srresnet.py) and a bicubic skip (the net then learns only the residual)
    batch_norm: bool = True
    upsample: Literal["stages", "direct"] = "stages"
    bicubic_skip: bool = False
    # inference: LR inputs larger than `tile` px run in overlapping tiles (bounded memory)
    tile: int = 128
    tile_overlap: int = 32


def quantise(x: Tensor) -> Tensor:
    """Round [-1, 1] images to 8-bit levels, as saved files are, before scoring."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def luma(x: Tensor, border: int) -> Tensor:
    """Y on the 0..255 scale of 8-bit levels, `border` px cropped: BT.601 for RGB, grey as is."""
    y = metrics.rgb_to_y(quantise(x)) if x.shape[1] == 3 else (quantise(x).double() + 1) * 127.5
    h, w = y.shape[2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"a border of {border} px leaves nothing of a {h}x{w} image")
    return y[:, :, border : h - border, border : w - border]


def sr_metrics(fake: Tensor, real: Tensor, scale: int) -> dict[str, Tensor]:
    """PSNR and SSIM on Y (0..255, 8-bit levels) with `scale` border px cropped: (B,) each."""
    fy, ry = luma(fake, scale), luma(real, scale)
    return {
        "psnr_y": metrics.psnr(fy, ry, data_range=255.0).clamp(max=metrics.PSNR_CAP),
        "ssim_y": metrics.ssim(fy, ry, data_range=255.0),
    }


def centre_crop(batch: Batch, lr_side: int, scale: int) -> tuple[Tensor, Tensor]:
    """LR and HR centre crops of at most `lr_side` LR px, aligned on the LR grid."""
    lr, hr = batch["a"], batch["b"]
    h, w = lr.shape[2:]
    ch, cw = min(h, lr_side), min(w, lr_side)
    y, x = (h - ch) // 2, (w - cw) // 2
    lr = lr[:, :, y : y + ch, x : x + cw]
    hr = hr[:, :, y * scale : (y + ch) * scale, x * scale : (x + cw) * scale]
    return lr, hr


class SRResNetMethod(Method):
    """G: LR -> HR (x scale), trained on pixel MSE (or L1) against the HR image."""

    Config = SRResNetConfig
    data_kind = "hr"
    recipe = "srresnet_x4.yaml"
    tiny_settings = {"model": {"scale": 2, "n_feats": 8, "n_blocks": 1}, "data": {"crop_size": 16}}
    flags = (Flag("--scale", "model.scale", int, "super-resolution factor (2, 3, 4 or 8)"),)

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        # the paper: 96x96 HR crops, batch 16, Adam lr 1e-4 with beta1 0.9
        return {
            "data": {"crop_size": 96, "load_size": 96},
            "train": {"batch_size": 16, "lr": 1e-4, "beta1": 0.9},
        }

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m, d = cfg.model, cfg.data
        if m.scale not in SCALES:
            raise ConfigError(
                f"model.scale={m.scale}: choose one of {', '.join(map(str, SCALES))} (--scale)"
            )
        if d.crop_size % m.scale:
            raise ConfigError(
                f"data.crop_size={d.crop_size} must be a multiple of model.scale={m.scale} "
                f"(the HR crop is downscaled by it); e.g. --size {d.crop_size // m.scale * m.scale}"
            )
        if d.crop_size < 2 * m.scale:
            raise ConfigError(f"data.crop_size={d.crop_size} is too small for x{m.scale}")
        if d.in_channels not in (1, 3):
            raise ConfigError(
                f"data.in_channels={d.in_channels}: super-resolution takes RGB (3) or grey (1)"
            )
        if d.direction != "AtoB":
            raise ConfigError("super-resolution goes LR -> HR only: leave data.direction=AtoB")
        if d.in_channels != d.out_channels:
            raise ConfigError(
                "super-resolution keeps the channels: data.in_channels and data.out_channels "
                f"must be equal, got {d.in_channels} and {d.out_channels}"
            )
        if m.n_feats < 1 or m.n_blocks < 0:
            raise ConfigError("model.n_feats must be >= 1 and model.n_blocks >= 0")
        if m.tile < 0 or (m.tile and not 0 <= m.tile_overlap < m.tile):
            raise ConfigError(
                f"model.tile={m.tile}, model.tile_overlap={m.tile_overlap}: need tile >= 0 "
                "(0: no tiling) and 0 <= tile_overlap < tile"
            )
        return cfg

    @classmethod
    def dataset_options(cls, cfg: Config) -> dict[str, Any]:
        return {"scale": cfg.model.scale}

    @classmethod
    def eval_metrics(cls, cfg: Config, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        # the SR literature's figures: Y channel of 8-bit images, `scale` px border cropped
        return sr_metrics(fake, real, cfg.model.scale)

    @classmethod
    def eval_baseline(cls, cfg: Config) -> Baseline:
        return Baseline("bicubic", bicubic_upscale)

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m = cfg.model
        self.m = m
        ch = cfg.data.in_channels
        self.g = SRResNet(
            ch,
            ch,
            m.scale,
            m.n_feats,
            m.n_blocks,
            batch_norm=m.batch_norm,
            upsample=m.upsample,
            bicubic_skip=m.bicubic_skip,
        ).to(device)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"g": OptimizerSpec(self.g.parameters())}

    def pixel_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        """The configured pixel loss, in fp32."""
        fn = F.mse_loss if self.m.pixel_loss == "mse" else F.l1_loss
        return fn(sr.float(), hr)

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        lr = batch["a"].to(self.device, non_blocking=True)  # (B, C, h, w)
        hr = batch["b"].to(self.device, non_blocking=True)  # (B, C, h*scale, w*scale)
        with self.autocast():
            sr = self.parallel(self.g)(lr)
        loss = self.pixel_loss(sr, hr)
        self.optimize("g", loss)
        # PSNR of the (unclamped) batch on the [-1, 1] range: a readable training curve
        mse = F.mse_loss(sr.detach().float(), hr).item()
        return {f"g_{self.m.pixel_loss}": loss.item(), "psnr": 10 * math.log10(4 / max(mse, 1e-12))}

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        lr, hr = centre_crop(batch, VISUAL_LR, self.m.scale)
        sr = self.translate(lr).clamp(-1, 1).cpu()
        size = tuple(hr.shape[2:])
        return [{"input": lr, "bicubic": bicubic_upscale(lr, size), "output": sr, "target": hr}]

    def inference_generator(self, direction: str | None = None) -> Generator:
        if direction not in (None, "AtoB"):
            raise ConfigError(f"super-resolution goes one way (LR -> HR); got {direction}")
        ch = self.cfg.data.in_channels
        return Generator(self.g, ch, ch, 1, self.m.scale, self.m.tile, self.m.tile_overlap)
