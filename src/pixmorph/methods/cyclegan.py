"""CycleGAN: unpaired translation with two generators, two discriminators and cycle consistency."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.config import Config
from pixmorph.data.unaligned import domains
from pixmorph.errors import ConfigError
from pixmorph.losses.diffaugment import parse_policy
from pixmorph.losses.gan import GANMode, d_loss, g_loss, gradient_penalty
from pixmorph.methods.base import (
    Batch,
    Generator,
    Method,
    OptimizerSpec,
    Panel,
    set_requires_grad,
)
from pixmorph.methods.image_pool import ImagePool
from pixmorph.nets.blocks import Norm
from pixmorph.nets.factory import (
    DiscriminatorConfig,
    GeneratorArch,
    GeneratorConfig,
    build_discriminator,
    build_generator,
    fit_generator,
    size_multiple,
)

log = logging.getLogger(__name__)


@dataclass
class CycleGANGeneratorConfig(GeneratorConfig):
    """The generator spec with CycleGAN's defaults (`auto` also means resnet_9blocks)."""

    arch: GeneratorArch = "resnet_9blocks"
    norm: Norm = "instance"
    dropout: bool = False


@dataclass
class CycleGANDiscriminatorConfig(DiscriminatorConfig):
    """The 70x70 PatchGAN with instance norm."""

    norm: Norm = "instance"


@dataclass
class CycleGANConfig:
    """CycleGAN settings; defaults are the published ones. g_ab and g_ba share one spec."""

    generator: CycleGANGeneratorConfig = field(default_factory=CycleGANGeneratorConfig)
    discriminator: CycleGANDiscriminatorConfig = field(default_factory=CycleGANDiscriminatorConfig)
    gan_mode: GANMode = "lsgan"
    lambda_a: float = 10.0  # cycle loss A -> B -> A
    lambda_b: float = 10.0  # cycle loss B -> A -> B
    lambda_identity: float = 0.5  # identity loss, as a fraction of lambda_a/lambda_b; 0: off
    pool_size: int = 50  # fakes each discriminator remembers; 0: no pool
    lambda_gp: float = 10.0  # weight of the gradient penalty (gan_mode=wgangp)
    # DiffAugment of what both Ds see, real and fake alike: "" or e.g. "color,translation,cutout"
    diffaugment: str = ""


class CycleGAN(Method):
    """g_ab: A -> B and g_ba: B -> A; d_a judges A images, d_b judges B images.

    `data.in_channels` are domain A's channels and `data.out_channels` domain B's; both
    directions always train, and `data.direction` only picks the default for translate/evaluate.
    """

    Config = CycleGANConfig
    data_kind = "unaligned"
    recipe = "cyclegan.yaml"
    tiny_settings = {
        "model": {"generator": {"arch": "resnet_6blocks", "ngf": 8}, "discriminator": {"ndf": 8}}
    }
    directions = ("AtoB", "BtoA")
    batches_passes = True

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        return {"out": "runs/cyclegan"}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m: CycleGANConfig = cfg.model
        arch = "resnet_9blocks" if m.generator.arch == "auto" else m.generator.arch
        m.generator.arch = fit_generator(arch, cfg.data.crop_size)
        for name in ("lambda_a", "lambda_b", "lambda_identity", "lambda_gp"):
            if getattr(m, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0")
        if m.pool_size < 0:
            raise ConfigError("model.pool_size must be >= 0 (0 turns the image pool off)")
        parse_policy(m.diffaugment)
        in_ch, out_ch = cfg.data.in_channels, cfg.data.out_channels
        if m.lambda_identity > 0 and in_ch != out_ch:
            # G_ab(b) = b is only defined when both domains have the same channels
            log.info(
                "identity loss off: domain A has %d channels and domain B %d "
                "(model.lambda_identity %.3g -> 0)",
                in_ch,
                out_ch,
                m.lambda_identity,
            )
            m.lambda_identity = 0.0
        return cfg

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m: CycleGANConfig = cfg.model
        self.m = m
        ch_a, ch_b = cfg.data.in_channels, cfg.data.out_channels
        self.g_ab = build_generator(m.generator, ch_a, ch_b).to(device)
        self.g_ba = build_generator(m.generator, ch_b, ch_a).to(device)
        if training:
            self.d_a = build_discriminator(m.discriminator, ch_a).to(device)
            self.d_b = build_discriminator(m.discriminator, ch_b).to(device)
            self.pool_a = ImagePool(m.pool_size)  # past fake_a for d_a
            self.pool_b = ImagePool(m.pool_size)  # past fake_b for d_b
            self.augment = parse_policy(m.diffaugment)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        # one optimizer per role, as published: the generators share a loss, so do the Ds
        return {
            "g": OptimizerSpec(itertools.chain(self.g_ab.parameters(), self.g_ba.parameters())),
            "d": OptimizerSpec(itertools.chain(self.d_a.parameters(), self.d_b.parameters())),
        }

    def _d_loss(self, d: torch.nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """Half the sum of the real and fake losses (D learns slower than G), and the GP."""
        mode = self.m.gan_mode
        wrapped = self.parallel(d)
        real, fake = self.d_view(real, fake)  # one draw for both
        with self.autocast():
            loss = 0.5 * (
                d_loss(mode, wrapped(real), real=True) + d_loss(mode, wrapped(fake), real=False)
            )
        # the penalty takes the bare D: it needs a double backward
        gp = gradient_penalty(d, real, fake) if mode == "wgangp" else loss.new_zeros(())
        return loss, gp

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        real_a = batch["a"].to(self.device, non_blocking=True)  # (B, C_a, H, W)
        real_b = batch["b"].to(self.device, non_blocking=True)  # (B, C_b, H, W)
        m, mode = self.m, self.m.gan_mode

        g_ab, g_ba = self.parallel(self.g_ab), self.parallel(self.g_ba)

        # G: fool both Ds (bare and frozen: no update for them here), come back around both
        # cycles, leave in-domain images alone
        set_requires_grad(self.d_a, False)
        set_requires_grad(self.d_b, False)
        identity = m.lambda_identity > 0
        with self.autocast():
            fake_b, rec_a, fake_a, rec_b, idt_b, idt_a = self._generate(
                g_ab, g_ba, real_a, real_b, identity
            )
            loss_g_ab = g_loss(mode, self.d_b(*self.d_view(fake_b)))
            loss_g_ba = g_loss(mode, self.d_a(*self.d_view(fake_a)))
        loss_cycle_a = F.l1_loss(rec_a.float(), real_a) * m.lambda_a
        loss_cycle_b = F.l1_loss(rec_b.float(), real_b) * m.lambda_b
        loss_g = loss_g_ab + loss_g_ba + loss_cycle_a + loss_cycle_b
        losses: dict[str, float] = {}
        if identity:
            loss_idt_b = F.l1_loss(idt_b.float(), real_b) * m.lambda_b * m.lambda_identity
            loss_idt_a = F.l1_loss(idt_a.float(), real_a) * m.lambda_a * m.lambda_identity
            loss_g = loss_g + loss_idt_a + loss_idt_b
            losses.update(idt_a=loss_idt_a.item(), idt_b=loss_idt_b.item())
        self.optimize("g", loss_g)

        # D: real images up, fakes (fresh or from the pool) down
        set_requires_grad(self.d_a, True)
        set_requires_grad(self.d_b, True)
        loss_d_a, gp_a = self._d_loss(self.d_a, real_a, self.pool_a.query(fake_a))
        loss_d_b, gp_b = self._d_loss(self.d_b, real_b, self.pool_b.query(fake_b))
        self.optimize("d", loss_d_a + loss_d_b + m.lambda_gp * (gp_a + gp_b))

        losses.update(
            d_a=loss_d_a.item(),
            d_b=loss_d_b.item(),
            g_ab=loss_g_ab.item(),
            g_ba=loss_g_ba.item(),
            cycle_a=loss_cycle_a.item(),
            cycle_b=loss_cycle_b.item(),
        )
        if mode == "wgangp":
            losses.update(gp_a=gp_a.item(), gp_b=gp_b.item())
        return losses

    def _generate(
        self, g_ab: Any, g_ba: Any, real_a: Tensor, real_b: Tensor, identity: bool
    ) -> tuple[Tensor, ...]:
        """fake_b, rec_a, fake_a, rec_b and (with identity) idt_b, idt_a.

        Images that go through the same generator go as one batch where that gives the same
        results: the generator normalises each image on its own (instance norm or none) and A
        and B images have one shape. Three larger calls instead of six (four without
        identity) make the step ~8 % faster on a CPU (resnet_9blocks at 128x128, bf16);
        train.batch_passes=false runs them apart.
        """
        batched = self.runtime.batch_passes and self.m.generator.norm in ("instance", "none")
        batched = batched and real_a.shape == real_b.shape
        if not batched:
            fake_b = g_ab(real_a)
            fake_a = g_ba(real_b)
            idt_b, idt_a = (g_ab(real_b), g_ba(real_a)) if identity else (None, None)
            return fake_b, g_ba(fake_b), fake_a, g_ab(fake_a), idt_b, idt_a
        n = real_a.shape[0]
        if identity:
            fake_b, idt_b = g_ab(torch.cat([real_a, real_b])).split(n)
            fake_a, idt_a, rec_a = g_ba(torch.cat([real_b, real_a, fake_b])).split(n)
        else:
            fake_b, idt_b, idt_a = g_ab(real_a), None, None
            fake_a, rec_a = g_ba(torch.cat([real_b, fake_b])).split(n)
        return fake_b, rec_a, fake_a, g_ab(fake_a), idt_b, idt_a

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        real_a, real_b = (x.to(self.device) for x in domains(batch, self.cfg.data.direction))
        fake_b = self.translate(real_a, "AtoB")
        fake_a = self.translate(real_b, "BtoA")
        return [
            {"real_a": real_a, "fake_b": fake_b, "rec_a": self.translate(fake_b, "BtoA")},
            {"real_b": real_b, "fake_a": fake_a, "rec_b": self.translate(fake_a, "AtoB")},
        ]

    def inference_generator(self, direction: str | None = None) -> Generator:
        direction = direction or self.cfg.data.direction
        ch_a, ch_b = self.cfg.data.in_channels, self.cfg.data.out_channels
        multiple = size_multiple(self.m.generator.arch)
        if direction == "AtoB":
            return Generator(self.g_ab, ch_a, ch_b, multiple)
        if direction == "BtoA":
            return Generator(self.g_ba, ch_b, ch_a, multiple)
        raise ConfigError(f"direction must be AtoB or BtoA, got {direction!r}")

    def extra_state(self) -> dict[str, Any]:
        if not self.training_mode:
            return {}
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if not self.training_mode:
            return
        for name in ("pool_a", "pool_b"):
            if name in state:
                try:
                    getattr(self, name).load_state_dict(state[name], self.device)
                except ValueError as e:
                    raise ConfigError(f"{e}; resume with the run's own model.pool_size") from e
