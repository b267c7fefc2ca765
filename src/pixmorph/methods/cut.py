"""CUT and FastCUT: one-sided unpaired translation with patchwise contrastive learning (PatchNCE).

One generator g_ab: A -> B, one PatchGAN d_b, and MLP heads that embed patches of g_ab's own
encoder features: a patch of the output must match the input's patch at the same position
better than the input's other patches (see nets/patchnce.py).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from pixmorph.config import Config, ranged
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
from pixmorph.methods.cyclegan import CycleGANDiscriminatorConfig, CycleGANGeneratorConfig
from pixmorph.nets.factory import build_discriminator, build_generator, fit_generator, size_multiple
from pixmorph.nets.patchnce import NCE_LAYERS, PatchSampleMLP, patch_nce, tap_channels

log = logging.getLogger(__name__)


@dataclass
class CUTConfig:
    """CUT settings; defaults are the published ones (Park et al. 2020)."""

    generator: CycleGANGeneratorConfig = field(default_factory=CycleGANGeneratorConfig)
    discriminator: CycleGANDiscriminatorConfig = field(default_factory=CycleGANDiscriminatorConfig)
    gan_mode: GANMode = "lsgan"
    lambda_gan: float = ranged(1.0, 0.0)
    lambda_nce: float = ranged(1.0, 0.0)
    nce_idt: bool = True  # also PatchNCE between real_b and g_ab(real_b)
    nce_layers: tuple[str, ...] = NCE_LAYERS  # ResNetGenerator modules whose outputs are tapped
    n_patches: int = ranged(256, 1)  # positions sampled per layer and image
    nce_t: float = ranged(0.07, 1e-4)  # temperature of the similarities
    mlp_units: int = ranged(256, 1)  # width of the 2-layer MLP heads
    flip_equivariance: bool = False  # G sees a width-flipped input half the time
    lambda_gp: float = ranged(10.0, 0.0)  # weight of the gradient penalty (gan_mode=wgangp)
    # DiffAugment of what D sees, real and fake alike: "" or e.g. "color,translation,cutout"
    diffaugment: str = ""


@dataclass
class FastCUTConfig(CUTConfig):
    """FastCUT: a stronger PatchNCE weight, no identity term, flip-equivariance."""

    lambda_nce: float = ranged(10.0, 0.0)
    nce_idt: bool = False
    flip_equivariance: bool = True


class CUT(Method):
    """g_ab: A -> B with d_b and the PatchNCE heads `nce_heads` (trained with g_ab)."""

    Config = CUTConfig
    data_kind = "unaligned"
    directions = ("AtoB",)
    recipe = "cut.yaml"
    batches_passes = True
    tiny_settings = {
        "model": {
            "generator": {"arch": "resnet_6blocks", "ngf": 8},
            "discriminator": {"ndf": 8},
            "n_patches": 32,
            "mlp_units": 16,
        }
    }

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        return {"out": "runs/cut"}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m: CUTConfig = cfg.model
        arch = "resnet_9blocks" if m.generator.arch == "auto" else m.generator.arch
        if not arch.startswith("resnet_"):
            raise ConfigError(
                f"model.generator.arch={arch}: CUT taps the ResNet generator's encoder; "
                "use resnet_9blocks (published) or resnet_6blocks"
            )
        m.generator.arch = fit_generator(arch, cfg.data.crop_size)
        m.nce_layers = tuple(m.nce_layers)
        parse_policy(m.diffaugment)
        if cfg.data.direction != "AtoB":
            raise ConfigError(_ONE_SIDED)
        if m.nce_idt and cfg.data.in_channels != cfg.data.out_channels:
            # g_ab(b) only exists when B images fit g_ab's input
            log.info("model.nce_idt off: domain A has %d channels, B %d", *_channels(cfg))
            m.nce_idt = False
        return cfg

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m: CUTConfig = cfg.model
        self.m = m
        ch_a, ch_b = _channels(cfg)
        self.g_ab = build_generator(m.generator, ch_a, ch_b).to(device)
        if training:
            self.d_b = build_discriminator(m.discriminator, ch_b).to(device)
            # the heads' input widths come from one tiny dummy pass, so they exist (and are in
            # the optimizer and in checkpoints) before the first real batch
            channels = tap_channels(self.g_ab, m.nce_layers)
            heads = PatchSampleMLP(channels, m.mlp_units, m.generator.init_gain)
            self.nce_heads = heads.to(device)
            self.augment = parse_policy(m.diffaugment)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        # the heads learn with G, from the same loss and at the same rate
        g_params = itertools.chain(self.g_ab.parameters(), self.nce_heads.parameters())
        return {"g": OptimizerSpec(g_params), "d": OptimizerSpec(self.d_b.parameters())}

    def _positions(self, step: int) -> torch.Generator:
        """The draws of one step: every process gets the same, and a resumed run too."""
        return torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + step)

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        real_a = batch["a"].to(self.device, non_blocking=True)  # (B, C_a, H, W)
        real_b = batch["b"].to(self.device, non_blocking=True)  # (B, C_b, H, W)
        m, mode = self.m, self.m.gan_mode
        draws = self._positions(step)
        flipped = m.flip_equivariance and bool(torch.rand((), generator=draws) < 0.5)

        g_ab = self.parallel(self.g_ab)
        with self.autocast():
            fake_b, idt_b = self._generate(g_ab, real_a, real_b, flipped)

        # D: real B up, fake B down (half the sum: D learns slower than G)
        set_requires_grad(self.d_b, True)
        d_b = self.parallel(self.d_b)
        seen_real, seen_fake = self.d_view(real_b, fake_b.detach())  # one draw for both
        with self.autocast():
            loss_d_real = d_loss(mode, d_b(seen_real), real=True)
            loss_d_fake = d_loss(mode, d_b(seen_fake), real=False)
        loss_d = 0.5 * (loss_d_real + loss_d_fake)
        gp = gradient_penalty(self.d_b, seen_real, seen_fake) if mode == "wgangp" else None
        self.optimize("d", loss_d if gp is None else loss_d + m.lambda_gp * gp)

        # G and the heads: fool the frozen D, keep each output patch tied to its input patch
        set_requires_grad(self.d_b, False)
        heads = self.parallel(self.nce_heads)
        nce = dict(layers=m.nce_layers, n_patches=m.n_patches, temperature=m.nce_t)
        with self.autocast():
            loss_gan = g_loss(mode, self.d_b(*self.d_view(fake_b))) * m.lambda_gan
            loss_nce = patch_nce(
                self.g_ab, heads, real_a, fake_b, generator=draws, flipped=flipped, **nce
            )
            loss_nce = loss_nce * m.lambda_nce
            losses = {"d_b": loss_d.item(), "g_gan": loss_gan.item(), "nce": loss_nce.item()}
            if idt_b is not None:
                loss_nce_y = patch_nce(
                    self.g_ab, heads, real_b, idt_b, generator=draws, flipped=flipped, **nce
                )
                loss_nce_y = loss_nce_y * m.lambda_nce
                losses["nce_idt"] = loss_nce_y.item()
                loss_nce = 0.5 * (loss_nce + loss_nce_y)
        self.optimize("g", loss_gan + loss_nce)
        set_requires_grad(self.d_b, True)
        if gp is not None:
            losses["gp"] = gp.item()
        return losses

    def _generate(
        self, g_ab: Any, real_a: Tensor, real_b: Tensor, flipped: bool
    ) -> tuple[Tensor, Tensor | None]:
        """fake_b and (with nce_idt) idt_b = g_ab(real_b), from width-flipped inputs if flipped.

        A and B go through g_ab as one batch where that gives the same images: instance norm
        (or none) normalises each image on its own.
        """
        if flipped:
            real_a, real_b = real_a.flip(-1), real_b.flip(-1)
        if not self.m.nce_idt:
            return g_ab(real_a), None
        norm_per_image = self.m.generator.norm in ("instance", "none")
        if self.runtime.batch_passes and norm_per_image and real_a.shape == real_b.shape:
            fake_b, idt_b = g_ab(torch.cat([real_a, real_b])).split(real_a.shape[0])
            return fake_b, idt_b
        return g_ab(real_a), g_ab(real_b)

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        real_a, real_b = batch["a"].to(self.device), batch["b"].to(self.device)
        panels = [{"real_a": real_a, "fake_b": self.translate(real_a)}]
        if self.m.nce_idt:
            panels.append({"real_b": real_b, "idt_b": self.translate(real_b)})
        return panels

    def inference_generator(self, direction: str | None = None) -> Generator:
        if (direction or "AtoB") != "AtoB":
            raise ConfigError(_ONE_SIDED)
        ch_a, ch_b = _channels(self.cfg)
        return Generator(self.g_ab, ch_a, ch_b, size_multiple(self.m.generator.arch))


class FastCUT(CUT):
    """CUT with FastCUT's defaults: PatchNCE weight 10, no identity term, flip-equivariance."""

    Config = FastCUTConfig
    recipe = "fastcut.yaml"

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        return {"out": "runs/fastcut"}


_ONE_SIDED = (
    "CUT/FastCUT learn A -> B only: translate and evaluate with --direction AtoB (data.direction"
    "=AtoB); for B -> A train CUT on swapped folders, or use --method cyclegan for both ways"
)


def _channels(cfg: Config) -> tuple[int, int]:
    return cfg.data.in_channels, cfg.data.out_channels
