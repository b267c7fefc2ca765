"""SRGAN: SRResNet trained with a content loss plus an adversarial loss (SRGAN's second phase)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from pixmorph.config import Config
from pixmorph.errors import ConfigError
from pixmorph.losses.diffaugment import parse_policy
from pixmorph.losses.gan import GANMode, d_loss, g_loss, gradient_penalty
from pixmorph.methods.base import Batch, Flag, OptimizerSpec, set_requires_grad
from pixmorph.methods.srresnet import SRResNetConfig, SRResNetMethod
from pixmorph.nets.perceptual import VGGContentLoss, load_vgg19
from pixmorph.nets.sr_discriminator import SRDiscriminator
from pixmorph.nets.vgg import VGGLayer

log = logging.getLogger(__name__)

NO_VGG = (
    "no VGG19 weights given (model.vgg_weights, --vgg-weights FILE) and none can be downloaded "
    "here, so the content loss fell back to the pixel loss (model.pixel_loss): this is not "
    "the published VGG content loss"
)


@dataclass
class SRGANConfig(SRResNetConfig):
    """SRGAN settings: the generator's, plus D, the content loss and the adversarial weight."""

    d_feats: int = 64
    gan_mode: GANMode = "vanilla"
    lambda_adv: float = 1e-3
    lambda_gp: float = 10.0  # weight of the gradient penalty (gan_mode=wgangp)
    # auto: VGG features when vgg_weights is given, else the pixel loss (recorded in the note)
    content_loss: Literal["auto", "vgg", "pixel"] = "auto"
    content_loss_note: str = ""  # written when auto is resolved: why this content loss
    vgg_weights: str = ""  # a VGG19 state dict (features.N.weight layout), .pth or .safetensors
    vgg_layer: VGGLayer = "relu5_4"  # phi_5,4 of the paper (SRGAN-VGG54); relu2_2 is VGG22
    vgg_feature_scale: float = 1 / 12.75  # the paper's rescaling of the VGG feature maps
    # DiffAugment of what D sees, HR and SR crops alike: "" or e.g. "color,translation,cutout"
    diffaugment: str = ""


class SRGANMethod(SRResNetMethod):
    """G as in SRResNet; D tells HR crops from G's outputs; G minimises content + 1e-3 adv.

    Start G from an SRResNet run as the paper does with `--init-generator RUN` (a fresh run's
    train.init_generator; resuming restores the run's own weights).
    """

    Config = SRGANConfig
    recipe = "srgan_x4.yaml"
    tiny_settings = {
        "model": {"scale": 2, "n_feats": 8, "n_blocks": 1, "d_feats": 8},
        "data": {"crop_size": 16},
    }
    flags = (
        *SRResNetMethod.flags,
        Flag("--vgg-weights", "model.vgg_weights", str, "VGG19 state dict for the content loss"),
    )

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        cfg = super().resolve(cfg)
        m: SRGANConfig = cfg.model
        if m.lambda_adv < 0:
            raise ConfigError("model.lambda_adv must be >= 0")
        parse_policy(m.diffaugment)
        if m.content_loss == "auto":
            if m.vgg_weights:
                m.content_loss = "vgg"
                m.content_loss_note = f"VGG19 {m.vgg_layer} features from {m.vgg_weights}"
            else:
                m.content_loss = "pixel"
                m.content_loss_note = NO_VGG
        elif m.content_loss == "vgg" and not m.vgg_weights:
            raise ConfigError(
                "model.content_loss=vgg needs model.vgg_weights (--vgg-weights FILE): a VGG19 "
                "state dict with keys features.0.weight ... features.34.bias"
            )
        return cfg

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m: SRGANConfig = cfg.model
        self.content: VGGContentLoss | None = None
        if not training:
            return  # inference needs only G
        ch = cfg.data.in_channels
        # the dense head is sized for the HR crop; other sizes go through its adaptive pool
        size = max(16, cfg.data.crop_size // 16 * 16)
        self.d = SRDiscriminator(ch, m.d_feats, size).to(device)
        self.augment = parse_policy(m.diffaugment)
        if m.content_loss == "vgg":
            net = load_vgg19(m.vgg_weights, m.vgg_layer)
            self.content = VGGContentLoss(net, m.vgg_feature_scale, device)
            log.info("SRGAN content loss: %s", m.content_loss_note)
        else:
            log.warning("SRGAN content loss: pixel %s. %s", m.pixel_loss, m.content_loss_note)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return super().optimizers() | {"d": OptimizerSpec(self.d.parameters())}

    def content_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        """VGG feature MSE when weights were given, else the pixel loss."""
        if self.content is not None:
            with self.autocast():
                return self.content(sr, hr).float()
        return self.pixel_loss(sr, hr)

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        lr = batch["a"].to(self.device, non_blocking=True)  # (B, C, h, w)
        hr = batch["b"].to(self.device, non_blocking=True)  # (B, C, h*scale, w*scale)
        mode = self.m.gan_mode

        g, d = self.parallel(self.g), self.parallel(self.d)

        with self.autocast():
            sr = g(lr)

        # D: HR crops up, super-resolved crops down
        set_requires_grad(self.d, True)
        seen_hr, seen_sr = self.d_view(hr, sr.detach())  # one draw for both
        with self.autocast():
            loss_d_real = d_loss(mode, d(seen_hr), real=True)
            loss_d_fake = d_loss(mode, d(seen_sr), real=False)
        loss_d = loss_d_real + loss_d_fake
        losses = {"d_real": loss_d_real.item(), "d_fake": loss_d_fake.item()}
        if mode == "wgangp":
            gp = gradient_penalty(self.d, seen_hr, seen_sr)  # bare D: double backward
            loss_d = loss_d + self.m.lambda_gp * gp
            losses["d_gp"] = gp.item()
        self.optimize("d", loss_d)

        # G: content loss plus the weighted adversarial loss (the bare D: no update for it here)
        set_requires_grad(self.d, False)
        with self.autocast():
            loss_g_adv = g_loss(mode, self.d(*self.d_view(sr)))
        loss_g_content = self.content_loss(sr, hr)
        self.optimize("g", loss_g_content + self.m.lambda_adv * loss_g_adv)
        set_requires_grad(self.d, True)
        return losses | {"g_adv": loss_g_adv.item(), "g_content": loss_g_content.item()}
