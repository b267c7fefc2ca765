"""A minimal method to copy when adding one (docs/adding_a_method.md): a small conditional GAN.

It is not in the registry: tests register it to prove that one file, one registry line and one
recipe give a method the whole shared test suite (tests/test_method_contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixmorph.config import Config
from pixmorph.errors import ConfigError
from pixmorph.losses.gan import d_loss, g_loss
from pixmorph.methods.base import (
    Batch,
    Generator,
    Method,
    OptimizerSpec,
    Panel,
    set_requires_grad,
)
from pixmorph.nets.patchgan import PatchDiscriminator


@dataclass
class TemplateConfig:
    """The method's own settings: the `model:` section of a recipe."""

    width: int = 32
    lambda_l1: float = 10.0


def conv_net(in_ch: int, out_ch: int, width: int) -> nn.Module:
    """Three 3x3 convolutions at full resolution, tanh output: (B, in, H, W) -> (B, out, H, W)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, width, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, out_ch, 3, padding=1),
        nn.Tanh(),
    )


class Template(Method):
    """G: input -> output; D judges (input, output) pairs; adversarial + L1 loss."""

    Config = TemplateConfig
    data_kind = "aligned"
    recipe = "template.yaml"
    tiny_settings = {"model": {"width": 8}}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        if cfg.model.width < 1:
            raise ConfigError(f"model.width={cfg.model.width} must be at least 1")
        return cfg

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        d, m = cfg.data, cfg.model
        self.g = conv_net(d.in_channels, d.out_channels, m.width).to(device)
        if training:  # an inference build has no discriminator
            self.d = PatchDiscriminator(d.in_channels + d.out_channels, m.width, 2).to(device)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"g": OptimizerSpec(self.g.parameters()), "d": OptimizerSpec(self.d.parameters())}

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        real_a = batch["a"].to(self.device)  # (B, in, H, W)
        real_b = batch["b"].to(self.device)  # (B, out, H, W)
        with self.autocast():
            fake_b = self.parallel(self.g)(real_a)

        # D first: real pairs up, fake pairs down
        set_requires_grad(self.d, True)
        d = self.parallel(self.d)
        with self.autocast():
            loss_d_real = d_loss("lsgan", d(torch.cat([real_a, real_b], 1)), real=True)
            loss_d_fake = d_loss("lsgan", d(torch.cat([real_a, fake_b.detach()], 1)), real=False)
        self.optimize("d", 0.5 * (loss_d_real + loss_d_fake))

        # then G, through the bare and frozen D
        set_requires_grad(self.d, False)
        with self.autocast():
            loss_g_gan = g_loss("lsgan", self.d(torch.cat([real_a, fake_b], 1)))
        loss_g_l1 = F.l1_loss(fake_b.float(), real_b) * self.cfg.model.lambda_l1
        self.optimize("g", loss_g_gan + loss_g_l1)
        set_requires_grad(self.d, True)
        return {
            "d_real": loss_d_real.item(),
            "d_fake": loss_d_fake.item(),
            "g_gan": loss_g_gan.item(),
            "g_l1": loss_g_l1.item(),
        }

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        real_a = batch["a"].to(self.device)
        return [{"input": real_a, "output": self.translate(real_a), "target": batch["b"]}]

    def inference_generator(self, direction: str | None = None) -> Generator:
        if direction not in (None, self.cfg.data.direction):
            raise ConfigError(f"this model translates {self.cfg.data.direction} only")
        return Generator(self.g, self.cfg.data.in_channels, self.cfg.data.out_channels, 1)
