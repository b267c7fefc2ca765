"""pix2pix: a conditional GAN on paired images (U-Net G, PatchGAN D, adversarial + L1 loss)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.config import Config
from pixmorph.errors import ConfigError
from pixmorph.losses.diffaugment import diff_augment, parse_policy
from pixmorph.losses.gan import GANMode, d_loss, g_loss, gradient_penalty
from pixmorph.methods.base import (
    Batch,
    Generator,
    Method,
    OptimizerSpec,
    Panel,
    set_requires_grad,
)
from pixmorph.nets.factory import (
    DiscriminatorConfig,
    GeneratorConfig,
    build_discriminator,
    build_generator,
    fit_generator,
    size_multiple,
)


@dataclass
class Pix2PixConfig:
    """pix2pix settings; defaults are the published ones."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_mode: GANMode = "vanilla"
    lambda_l1: float = 100.0
    lambda_gp: float = 10.0  # weight of the gradient penalty (gan_mode=wgangp)
    # transforms D's real and fake pairs alike, for small datasets: "" or a comma-separated
    # list of color, translation, cutout (docs/quality.md)
    diffaugment: str = ""


class Pix2Pix(Method):
    """G: input -> output; D judges (input, output) pairs."""

    Config = Pix2PixConfig
    data_kind = "aligned"
    recipe = "facades.yaml"
    tiny_settings = {"model": {"generator": {"ngf": 8}, "discriminator": {"ndf": 8}}}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m: Pix2PixConfig = cfg.model
        m.generator.arch = fit_generator(m.generator.arch, cfg.data.crop_size)
        parse_policy(m.diffaugment)
        if m.lambda_l1 < 0:
            raise ConfigError("model.lambda_l1 must be >= 0")
        if min(cfg.data.in_channels, cfg.data.out_channels) < 1:
            raise ConfigError("data.in_channels and data.out_channels must be at least 1")
        return cfg

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m: Pix2PixConfig = cfg.model
        self.m = m
        self.augment = parse_policy(m.diffaugment)
        in_ch, out_ch = self.net_channels()
        self.g = build_generator(m.generator, in_ch, out_ch).to(device)
        if training:
            self.d = build_discriminator(m.discriminator, in_ch + out_ch).to(device)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"g": OptimizerSpec(self.g.parameters()), "d": OptimizerSpec(self.d.parameters())}

    def net_channels(self) -> tuple[int, int]:
        """Channels of G's input and output (variants such as colorization change them)."""
        return self.cfg.data.in_channels, self.cfg.data.out_channels

    def real_pair(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The (input, target) G learns from, on the device, as the nets see them."""
        real_a = batch["a"].to(self.device, non_blocking=True)  # (B, in, H, W)
        real_b = batch["b"].to(self.device, non_blocking=True)  # (B, out, H, W)
        return real_a, real_b

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        real_a, real_b = self.real_pair(batch)
        mode = self.m.gan_mode
        g, d = self.parallel(self.g), self.parallel(self.d)

        with self.autocast():
            fake_b = g(real_a)

        # D: real pairs up, fake pairs down; halved so D learns slower than G
        set_requires_grad(self.d, True)
        with self.autocast():
            fake_ab = torch.cat([real_a, fake_b.detach()], 1)
            real_ab = torch.cat([real_a, real_b], 1)
            fake_ab, real_ab = self.d_view(fake_ab, real_ab)  # one draw for both
            loss_d_fake = d_loss(mode, d(fake_ab), real=False)
            loss_d_real = d_loss(mode, d(real_ab), real=True)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        losses = {"d_real": loss_d_real.item(), "d_fake": loss_d_fake.item()}
        if mode == "wgangp":
            gp = gradient_penalty(self.d, real_ab, fake_ab)  # bare D: double backward
            loss_d = loss_d + self.m.lambda_gp * gp
            losses["d_gp"] = gp.item()
        self.optimize("d", loss_d)

        # G: fool D and stay close to the target (the bare D: its weights get no update here)
        set_requires_grad(self.d, False)
        with self.autocast():
            (fake_ab,) = self.d_view(torch.cat([real_a, fake_b], 1))
            loss_g_gan = g_loss(mode, self.d(fake_ab))
        loss_g_l1 = F.l1_loss(fake_b.float(), real_b) * self.m.lambda_l1
        self.optimize("g", loss_g_gan + loss_g_l1)
        set_requires_grad(self.d, True)
        losses.update(g_gan=loss_g_gan.item(), g_l1=loss_g_l1.item())
        return losses

    def d_view(self, *pairs: Tensor) -> tuple[Tensor, ...]:
        """(input, output) pairs as D sees them: transformed alike under model.diffaugment."""
        return diff_augment(*pairs, policy=self.augment, groups=self.net_channels())

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        real_a = batch["a"].to(self.device)
        return [{"input": real_a, "output": self.translate(real_a), "target": batch["b"]}]

    def inference_generator(self, direction: str | None = None) -> Generator:
        trained = self.cfg.data.direction
        if direction not in (None, trained):
            raise ConfigError(
                f"this pix2pix model was trained {trained}; it cannot translate {direction}"
            )
        return Generator(
            self.g,
            self.cfg.data.in_channels,
            self.cfg.data.out_channels,
            size_multiple(self.m.generator.arch),
        )
