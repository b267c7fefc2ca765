"""StyleGAN2 (Karras et al. 2020): a style-based generator trained on a folder of images.

Losses: non-saturating logistic; lazy R1 on reals; path-length regularization; style mixing.
G_ema, an exponential moving average of G, is what samples and checkpoints serve. Optional
progressive growing (StyleGAN 1): the resolution and fade alpha are functions of the step, so a
resumed run lands mid-fade exactly where it stopped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.config import Config
from pixmorph.errors import ConfigError
from pixmorph.losses.stylegan import (
    PathLengthRegularizer,
    d_logistic,
    g_nonsat,
    lazy_adam,
    r1_penalty,
    r1_weight,
)
from pixmorph.methods.base import (
    Batch,
    Flag,
    Method,
    OptimizerSpec,
    Panel,
    SampleEvaluation,
    Sampler,
    set_requires_grad,
)
from pixmorph.nets.ema import ema_beta, update_ema
from pixmorph.nets.stylegan import StyleGenerator, check_size
from pixmorph.nets.stylegan_discriminator import StyleDiscriminator


@dataclass
class StyleGANConfig:
    """StyleGAN2 settings (config-f defaults); the image size is data.crop_size."""

    z_dim: int = 512
    w_dim: int = 512
    n_mapping: int = 8
    mapping_lr_mul: float = 0.01
    channel_base: int = 32768  # widths min(channel_base / res, channel_max)
    channel_max: int = 512
    modulation: Literal["demod", "adain"] = "demod"
    upsample: Literal["bilinear", "transposed"] = "bilinear"
    mbstd_group: int = 4
    r1_gamma: float = 10.0
    r1_every: int = 16  # lazy R1: every 16 D steps, scaled by 16
    pl_weight: float = 2.0  # 0: no path-length regularization
    pl_every: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mix_prob: float = 0.9
    ema_half_life_images: float = 10_000.0
    ema_rampup: float = 0.0  # > 0: cap the EMA half-life at ema_rampup * images seen
    sample_truncation: float = 0.7  # psi of the truncated column of the sample grids
    progressive: bool = False  # StyleGAN 1 progressive growing
    progressive_start: int = 8  # the first resolution
    progressive_images: int = 600_000  # images per fade-in and per stable phase
    # train.eval_every: FID/KID/precision/recall of G_ema's samples against the training images
    eval_images: int = 1000  # samples (and real images, at most) per evaluation
    eval_truncation: float = 1.0
    eval_feature_net: Literal["inception", "random"] = "inception"  # random: tests only
    eval_inception_weights: str = ""  # "": $PIXMORPH_CACHE, ~/.cache/pixmorph or pixmorph[fid]


class StyleSampler(nn.Module):
    """G_ema as an unconditional sampler: z (B, z_dim), psi -> images, fixed noise (repeatable)."""

    def __init__(self, g: StyleGenerator) -> None:
        super().__init__()
        self.g = g

    @property
    def num_ws(self) -> int:
        return self.g.num_ws

    @property
    def w_avg(self) -> Tensor:
        return self.g.w_avg  # (w_dim,)

    def mapping(self, z: Tensor, truncation: float = 1.0) -> Tensor:
        """ws (B, num_ws, w_dim) of z: what style mixing and projection work on."""
        return self.g.mapping(z, truncation)

    def synthesis(self, ws: Tensor) -> Tensor:
        """Images of ws (B, num_ws, w_dim), with the same fixed noise as forward."""
        return self.g.synthesis(ws, noise_mode="const")

    def forward(self, z: Tensor, truncation: float = 1.0) -> Tensor:
        return self.g(z, truncation, noise_mode="const")


def fit_reals(reals: Tensor, res: int, alpha: float) -> Tensor:
    """Real images at the stage's resolution, blurred like the fading generator (progressive)."""
    factor = reals.shape[-1] // res
    x = F.avg_pool2d(reals, factor) if factor > 1 else reals  # (B, C, res, res)
    if alpha < 1.0:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
        x = low.lerp(x, alpha)
    return x


class StyleGAN(Method):
    """G (mapping + synthesis) and a residual D, trained as StyleGAN2; G_ema is the product."""

    Config = StyleGANConfig
    data_kind = "single"
    directions = ()
    recipe = "stylegan2.yaml"
    tiny_settings = {
        "model": {
            "z_dim": 16,
            "w_dim": 16,
            "n_mapping": 2,
            "channel_base": 256,
            "channel_max": 16,
            "r1_every": 2,
            "pl_every": 2,
        },
        "data": {"load_size": 32},
    }
    flags = (
        Flag("--r1-gamma", "model.r1_gamma", float, "R1 weight gamma (10 for FFHQ 1024)"),
        Flag("--pl-weight", "model.pl_weight", float, "path-length weight (0: off)"),
        Flag("--modulation", "model.modulation", str, "conv modulation", ("demod", "adain")),
    )

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        # Adam lr 0.002, betas (0, 0.99), constant LR; whole images resized, no crop jitter
        return {
            "data": {"crop_size": 256, "load_size": 256},
            "train": {
                "lr": 0.002,
                "beta1": 0.0,
                "beta2": 0.99,
                "lr_policy": "constant",
                "best_metric": "fid",
            },
        }

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m, size = cfg.model, cfg.data.crop_size
        try:
            check_size(size, "data.crop_size")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if m.modulation not in ("demod", "adain"):
            raise ConfigError(f"model.modulation={m.modulation!r}: choose demod or adain")
        if m.upsample not in ("bilinear", "transposed"):
            raise ConfigError(f"model.upsample={m.upsample!r}: choose bilinear or transposed")
        for name in ("r1_every", "pl_every", "pl_batch_shrink", "mbstd_group"):
            if getattr(m, name) < 1:
                raise ConfigError(f"model.{name}={getattr(m, name)} must be at least 1")
        if m.progressive and not 4 <= m.progressive_start <= size:
            raise ConfigError(
                f"model.progressive_start={m.progressive_start} must lie in [4, {size}] "
                "(data.crop_size) and be a power of two"
            )
        if m.progressive:
            try:
                check_size(m.progressive_start, "model.progressive_start")
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if m.eval_images < 4:
            raise ConfigError(f"model.eval_images={m.eval_images} must be at least 4")
        if m.eval_feature_net not in ("inception", "random"):
            raise ConfigError(
                f"model.eval_feature_net={m.eval_feature_net!r}: choose inception or random"
            )
        return cfg

    @classmethod
    def sample_evaluation(cls, cfg: Config) -> SampleEvaluation:
        m = cfg.model
        return SampleEvaluation(
            m.eval_images,
            m.eval_truncation,
            m.eval_feature_net,
            m.eval_inception_weights,
            seed=cfg.train.seed,
        )

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m, size, ch = cfg.model, cfg.data.crop_size, cfg.data.in_channels
        g = StyleGenerator(
            size, m.z_dim, m.w_dim, m.n_mapping, m.channel_base, m.channel_max,
            m.modulation, m.upsample, ch, m.mapping_lr_mul,
        ).to(device)  # fmt: skip
        if training:
            self.g = g
            self.d = StyleDiscriminator(
                size, ch, m.channel_base, m.channel_max, m.mbstd_group, progressive=m.progressive
            ).to(device)
            self.pl = PathLengthRegularizer(m.pl_weight, m.pl_every, m.pl_decay).to(device)
            self.g_ema = copy.deepcopy(g).eval()
        else:
            self.g_ema = g.eval()  # an inference build holds G_ema only
        set_requires_grad(self.g_ema, False)
        self.shown_stage = (size, 1.0)  # (resolution, alpha) the sample grids show

    def optimizers(self) -> dict[str, OptimizerSpec]:
        t, m = self.cfg.train, self.cfg.model
        # the lazy regularizers add optimizer steps: lr and betas shrink by k / (k + 1)
        g_every = m.pl_every if m.pl_weight > 0 else 0
        g_lr, g_betas = lazy_adam(t.lr, (t.beta1, t.beta2), g_every)
        d_lr, d_betas = lazy_adam(t.lr, (t.beta1, t.beta2), m.r1_every if m.r1_gamma > 0 else 0)
        return {
            "g": OptimizerSpec(self.g.parameters(), lr=g_lr, betas=g_betas),
            "d": OptimizerSpec(self.d.parameters(), lr=d_lr, betas=d_betas),
        }

    def stage(self, step: int) -> tuple[int, float]:
        """(resolution, alpha) of a training step: full size unless growing progressively."""
        m, size = self.cfg.model, self.cfg.data.crop_size
        if not m.progressive:
            return size, 1.0
        period = m.progressive_images
        images = (step - 1) * self.cfg.train.batch_size
        phase = images // period  # 0: the start resolution; then fade-in, stable, fade-in, ...
        res = m.progressive_start * 2 ** ((phase + 1) // 2)
        if res > size:
            return size, 1.0
        return res, (images % period) / period if phase % 2 else 1.0

    def generate(self, n: int, res: int, alpha: float, with_ws: bool = False) -> Any:
        """Fakes (and their ws) from fresh z, style mixing with probability style_mix_prob."""
        m = self.cfg.model
        z = torch.randn(n, m.z_dim, device=self.device)
        z2 = torch.randn(n, m.z_dim, device=self.device)
        return self.parallel(self.g)(
            z, z2=z2, mix_prob=m.style_mix_prob, resolution=res, alpha=alpha,
            update_w_avg=True, return_ws=with_ws,
        )  # fmt: skip

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        m = self.cfg.model
        res, alpha = self.stage(step)
        self.shown_stage = (res, alpha)  # what the next sample grid shows
        reals = fit_reals(batch["image"].to(self.device), res, alpha)  # (B, C, res, res)
        n = reals.shape[0]
        losses: dict[str, float] = {}

        # D first: logistic loss, then lazy R1 on the reals every r1_every steps
        set_requires_grad(self.d, True)
        d = self.parallel(self.d)
        with torch.no_grad(), self.autocast():
            fakes = self.generate(n, res, alpha)
        with self.autocast():
            real_logits = d(reals, res, alpha)
            loss_d = d_logistic(real_logits, d(fakes, res, alpha))
        self.optimize("d", loss_d)
        losses |= {"d_logistic": loss_d.item(), "d_real_score": real_logits.mean().item()}
        if m.r1_gamma > 0 and step % m.r1_every == 0:
            r1 = r1_penalty(lambda x: d(x, res, alpha), reals)
            self.optimize("d", r1 * r1_weight(m.r1_gamma, m.r1_every))
            losses["d_r1"] = r1.item()

        # then G through the bare, frozen D; path length on a smaller batch every pl_every steps
        set_requires_grad(self.d, False)
        with self.autocast():
            loss_g = g_nonsat(self.d(self.generate(n, res, alpha), res, alpha))
        self.optimize("g", loss_g)
        losses["g_nonsat"] = loss_g.item()
        if m.pl_weight > 0 and step % m.pl_every == 0:
            fakes, ws = self.generate(max(1, n // m.pl_batch_shrink), res, alpha, with_ws=True)
            pl = self.pl(fakes, ws)
            self.optimize("g", pl * m.pl_weight * m.pl_every)
            losses |= {"g_pl": pl.item(), "pl_mean": self.pl.mean.item()}
        set_requires_grad(self.d, True)

        t = self.cfg.train
        beta = ema_beta(
            t.batch_size, m.ema_half_life_images, step * t.batch_size, m.ema_rampup or None
        )
        update_ema(self.g_ema, self.g, beta)
        return losses

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        reals = batch["image"]
        n, size = reals.shape[0], self.cfg.data.crop_size
        gen = torch.Generator().manual_seed(self.cfg.train.seed)  # the same z at every grid
        z = torch.randn(n, self.cfg.model.z_dim, generator=gen).to(self.device)
        res, alpha = self.shown_stage
        psi = self.cfg.model.sample_truncation

        def show(img: Tensor) -> Tensor:  # progressive stages are shown at full size
            return F.interpolate(img, size=size, mode="nearest").clamp(-1, 1).cpu()

        g = self.g_ema
        return [
            {
                "real": reals,
                "g_ema": show(g(z, noise_mode="const", resolution=res, alpha=alpha)),
                f"psi_{psi:g}": show(g(z, psi, noise_mode="const", resolution=res, alpha=alpha)),
            }
        ]

    def sampler(self) -> Sampler:
        c = self.cfg
        return Sampler(
            StyleSampler(self.g_ema), c.model.z_dim, c.data.in_channels, c.data.crop_size
        )
