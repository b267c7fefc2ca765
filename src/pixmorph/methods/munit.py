"""MUNIT: multimodal unpaired translation by swapping style codes between two auto-encoders.

Each domain has a generator that splits an image into a content code and a style code. A -> B
keeps the content of an A image and decodes it with domain B's decoder and a style code drawn
from N(0, I) (or taken from a B example), so one input has many outputs. Losses, as published:
image reconstruction (10), content and style code reconstruction (1 each), optional cycle
reconstruction, and a multi-scale LSGAN per domain (1).

The flood ("climate") variant adds three parts, each off by default (docs/munit.md):
- `masked_cycle`: the A -> B -> A cycle loss counts only the pixels outside each A image's
  binary flood mask (`maskA/`): mean |(x - x_cycled) * (1 - mask)|;
- `semantic_w`: a frozen segmenter's labels of real_a must survive in fake_b outside the mask;
- `adv_w`: the content encoder learns to make codes of simulated A images (`simA/`) and real
  ones indistinguishable to a small classifier trained alongside.
`lambda_keep` adds a direct pull of fake_b towards real_a outside the mask (not a cycle term).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from pixmorph.config import Config, ranged
from pixmorph.data.flood import FloodDataset
from pixmorph.data.load_options import LoadOptions
from pixmorph.data.unaligned import domain_folders, domains
from pixmorph.errors import ConfigError
from pixmorph.losses.munit import (
    domain_classifier_loss,
    domain_confusion,
    masked_l1,
    ms_d_loss,
    ms_g_loss,
    semantic_consistency,
)
from pixmorph.methods.base import (
    Batch,
    Generator,
    Method,
    OptimizerSpec,
    Panel,
    set_requires_grad,
)
from pixmorph.nets.blocks import init_weights
from pixmorph.nets.munit import (
    ContentClassifier,
    MultiScaleDiscriminator,
    MUNITGenerator,
    MUNITTranslator,
    init_kaiming,
)
from pixmorph.nets.segmenter import FrozenSegmenter, InputRange, load_segmenter


@dataclass
class MUNITConfig:
    """MUNIT settings; defaults are the published ones (the authors' edges2shoes recipe)."""

    dim: int = ranged(64, 1)  # generator width after the first conv
    style_dim: int = ranged(8, 1)
    n_down: int = ranged(2, 1)  # content downsamplings (and decoder upsamplings)
    n_res: int = ranged(4, 0)  # residual blocks in the content encoder and the decoder
    mlp_dim: int = ranged(256, 1)
    dis_dim: int = ranged(64, 1)
    dis_layers: int = ranged(4, 1)
    num_scales: int = ranged(3, 1)
    weight_decay: float = ranged(1e-4, 0.0)
    gan_w: float = ranged(1.0, 0.0)
    recon_x_w: float = ranged(10.0, 0.0)  # x -> (c, s) -> x
    recon_s_w: float = ranged(1.0, 0.0)  # the random style survives a translation
    recon_c_w: float = ranged(1.0, 0.0)  # the content survives a translation
    recon_x_cyc_w: float = ranged(0.0, 0.0)  # A -> B -> A with the original style; 0: off
    # --- the flood ("climate") variant; every part is off by default ---
    masked_cycle: bool = False  # the A -> B -> A cycle term ignores pixels inside mask_a
    lambda_keep: float = ranged(0.0, 0.0)  # |fake_b - real_a| outside mask_a; 0: off
    mask_dir: str = ""  # binary masks of the A images by file stem; "": maskA/ beside trainA/
    semantic_w: float = ranged(0.0, 0.0)  # segmenter labels of real_a kept in fake_b; 0: off
    segmenter: str = ""  # TorchScript (.pt, .ts) or ONNX file: image -> logits (B, K, H, W)
    segmenter_range: InputRange = "-1,1"  # the value range the segmenter takes its images in
    segmenter_mean: list[float] = field(default_factory=list)  # per channel, after the range
    segmenter_std: list[float] = field(default_factory=list)
    adv_w: float = ranged(0.0, 0.0)  # content codes of simulated and real A alike; 0: off
    sim_dir: str = ""  # simulated A images; "": simA/ beside trainA/
    cls_dim: int = ranged(64, 1)  # width of the sim-vs-real content classifier


class MUNIT(Method):
    """gen_a, gen_b: one auto-encoder per domain; dis_a, dis_b: multi-scale discriminators."""

    Config = MUNITConfig
    data_kind = "unaligned"
    directions = ("AtoB", "BtoA")
    recipe = "munit.yaml"
    tiny_settings = {"model": {"dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "num_scales": 2}}

    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        # Adam 1e-4 (0.5, 0.999), halved every 100k steps: the published schedule
        return {
            "out": "runs/munit",
            "train": {"lr": 1e-4, "lr_policy": "step", "lr_step_every": 100_000, "lr_gamma": 0.5},
        }

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        m: MUNITConfig = cfg.model
        multiple = 2**m.n_down
        if cfg.data.crop_size % multiple:
            raise ConfigError(
                f"data.crop_size={cfg.data.crop_size} must be a multiple of {multiple} "
                f"(2**model.n_down) for MUNIT"
            )
        if m.masked_cycle and m.recon_x_cyc_w <= 0:
            raise ConfigError(
                "model.masked_cycle masks the cycle term: set model.recon_x_cyc_w > 0"
            )
        if m.semantic_w > 0 and not m.segmenter:
            raise ConfigError(
                "model.semantic_w > 0 needs model.segmenter: a TorchScript or ONNX segmentation "
                "network (image -> per-class logits), or set model.semantic_w=0"
            )
        if (
            m.lambda_keep > 0 or m.semantic_w > 0
        ) and cfg.data.in_channels != cfg.data.out_channels:
            raise ConfigError(
                "model.lambda_keep and model.semantic_w compare fake_b with real_a: they need "
                f"data.in_channels == data.out_channels (got {cfg.data.in_channels} and "
                f"{cfg.data.out_channels})"
            )
        if cls._climate(m) and cfg.data.direction != "AtoB":
            raise ConfigError(
                "the flood variant (masked_cycle, lambda_keep, semantic_w, adv_w) acts on A -> B: "
                "set data.direction=AtoB"
            )
        return cfg

    @staticmethod
    def _climate(m: MUNITConfig) -> bool:
        """Whether any part of the flood variant is on."""
        return m.masked_cycle or m.lambda_keep > 0 or m.semantic_w > 0 or m.adv_w > 0

    @classmethod
    def make_dataset(cls, cfg: Config, train: bool, root: str | None = None) -> Dataset:
        """The unaligned domains; for the flood variant also masks and simulated A images."""
        m: MUNITConfig = cfg.model
        if not (train and cls._climate(m)):
            return super().make_dataset(cfg, train, root)
        d = cfg.data
        folder_a, folder_b = domain_folders(root or d.root, d.root_a, d.root_b, "train")
        masks = Path(m.mask_dir) if m.mask_dir else folder_a.parent / "maskA"
        needs_masks = m.masked_cycle or m.lambda_keep > 0
        if needs_masks and not masks.is_dir():
            raise ConfigError(
                f"model.masked_cycle / model.lambda_keep need flood masks in {masks} (same stems "
                f"as {folder_a}); set model.mask_dir, make a flood set with `pixmorph data synth "
                "--flood`, or turn both off"
            )
        sims = Path(m.sim_dir) if m.sim_dir else folder_a.parent / "simA"
        if m.adv_w > 0 and not sims.is_dir():
            raise ConfigError(
                f"model.adv_w > 0 needs simulated A images in {sims}; set model.sim_dir or "
                "model.adv_w=0"
            )
        return FloodDataset(
            folder_a,
            folder_b,
            masks if masks.is_dir() else None,  # the semantic term uses masks when there are
            sims if m.adv_w > 0 else None,
            a_channels=d.in_channels,
            b_channels=d.out_channels,
            options=LoadOptions.of(cfg, train),
        )

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__(cfg, device, training)
        m: MUNITConfig = cfg.model
        self.m = m
        ch_a, ch_b = cfg.data.in_channels, cfg.data.out_channels
        kw = {"dim": m.dim, "style_dim": m.style_dim, "n_down": m.n_down, "n_res": m.n_res}
        # Each generator reads and writes its own domain, so both sides use its channels.
        self.gen_a = init_kaiming(MUNITGenerator(ch_a, ch_a, mlp_dim=m.mlp_dim, **kw)).to(device)
        self.gen_b = init_kaiming(MUNITGenerator(ch_b, ch_b, mlp_dim=m.mlp_dim, **kw)).to(device)
        self._segmenter: list[FrozenSegmenter] = []  # a list: not a submodule, not saved
        if training:
            dis = {"dim": m.dis_dim, "n_layers": m.dis_layers, "num_scales": m.num_scales}
            self.dis_a = init_weights(MultiScaleDiscriminator(ch_a, **dis), 0.02).to(device)
            self.dis_b = init_weights(MultiScaleDiscriminator(ch_b, **dis), 0.02).to(device)
            if m.adv_w > 0:
                c_ch = self.gen_a.enc_content.out_ch
                self.cls = init_weights(ContentClassifier(c_ch, m.cls_dim), 0.02).to(device)
            if m.semantic_w > 0:
                # the user's file, frozen: checkpoints hold only what this method trains
                seg = load_segmenter(m.segmenter, device, m.segmenter_range,
                                     m.segmenter_mean, m.segmenter_std)  # fmt: skip
                self._segmenter.append(seg)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        wd = self.m.weight_decay
        gens = itertools.chain(self.gen_a.parameters(), self.gen_b.parameters())
        dis = itertools.chain(self.dis_a.parameters(), self.dis_b.parameters())
        opts = {"g": OptimizerSpec(gens, weight_decay=wd), "d": OptimizerSpec(dis, weight_decay=wd)}
        if self.m.adv_w > 0:
            opts["c"] = OptimizerSpec(self.cls.parameters(), weight_decay=wd)
        return opts

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        real_a = batch["a"].to(self.device, non_blocking=True)  # (B, C_a, H, W)
        real_b = batch["b"].to(self.device, non_blocking=True)  # (B, C_b, H, W)
        mask_a = batch.get("mask_a")  # (B, 1, H, W), 1 = may flood
        mask_a = mask_a.to(self.device) if mask_a is not None else None
        m, n = self.m, real_a.shape[0]
        gen_a, gen_b = self.parallel(self.gen_a), self.parallel(self.gen_b)
        s_a = torch.randn(n, m.style_dim, device=self.device)  # styles from the prior
        s_b = torch.randn(n, m.style_dim, device=self.device)

        # G: reconstruct within each domain, translate across, and recover the codes
        set_requires_grad(self.dis_a, False)
        set_requires_grad(self.dis_b, False)
        with self.autocast():
            c_a, s_a_own = gen_a.encode(real_a)
            c_b, s_b_own = gen_b.encode(real_b)
            rec_a, rec_b = gen_a.decode(c_a, s_a_own), gen_b.decode(c_b, s_b_own)
            fake_a, fake_b = gen_a.decode(c_b, s_a), gen_b.decode(c_a, s_b)
            c_b_rec, s_a_rec = gen_a.encode(fake_a)
            c_a_rec, s_b_rec = gen_b.encode(fake_b)
            gan_a = ms_g_loss(self.dis_a(fake_a))
            gan_b = ms_g_loss(self.dis_b(fake_b))
            cyc = m.recon_x_cyc_w > 0
            cyc_a = gen_a.decode(c_a_rec, s_a_own) if cyc else None
            cyc_b = gen_b.decode(c_b_rec, s_b_own) if cyc else None
        losses = {
            "gan_a": gan_a,
            "gan_b": gan_b,
            "recon_x_a": F.l1_loss(rec_a.float(), real_a),
            "recon_x_b": F.l1_loss(rec_b.float(), real_b),
            "recon_s_a": F.l1_loss(s_a_rec.float(), s_a),
            "recon_s_b": F.l1_loss(s_b_rec.float(), s_b),
            "recon_c_a": F.l1_loss(c_a_rec.float(), c_a.float()),
            "recon_c_b": F.l1_loss(c_b_rec.float(), c_b.float()),
        }
        if cyc:
            # Water erases what lay beneath it, so the flood variant does not ask the cycle to
            # bring back the floodable region: only the pixels outside the mask count.
            if m.masked_cycle:
                losses["cyc_a"] = masked_l1(cyc_a, real_a, self._need_mask(mask_a))
            else:
                losses["cyc_a"] = F.l1_loss(cyc_a.float(), real_a)
            losses["cyc_b"] = F.l1_loss(cyc_b.float(), real_b)  # B images have no masks
        if m.lambda_keep > 0:
            losses["keep_a"] = masked_l1(fake_b, real_a, self._need_mask(mask_a))
        if m.semantic_w > 0:
            losses["semantic_a"] = self._semantic(real_a, fake_b, mask_a)
        if m.adv_w > 0:
            set_requires_grad(self.cls, False)
            # Under autocast like the encoder: c_a is bf16 there, the classifier's weights fp32.
            with self.autocast():
                c_sim = gen_a.enc_content(batch["sim"].to(self.device, non_blocking=True))
                logits_real, logits_sim = self.cls(c_a), self.cls(c_sim)
            losses["adv_content"] = domain_confusion(logits_real.float(), logits_sim.float())
        weights = {"gan": m.gan_w, "recon_x": m.recon_x_w, "recon_s": m.recon_s_w}
        weights |= {"recon_c": m.recon_c_w, "cyc": m.recon_x_cyc_w, "keep": m.lambda_keep}
        weights |= {"semantic": m.semantic_w, "adv": m.adv_w}
        loss_g = sum(weights[k.rsplit("_", 1)[0]] * v for k, v in losses.items())
        self.optimize("g", loss_g)

        # D: real images up, this step's translations down
        set_requires_grad(self.dis_a, True)
        set_requires_grad(self.dis_b, True)
        dis_a, dis_b = self.parallel(self.dis_a), self.parallel(self.dis_b)
        with self.autocast():
            loss_d_a = ms_d_loss(dis_a(real_a), dis_a(fake_a.detach()))
            loss_d_b = ms_d_loss(dis_b(real_b), dis_b(fake_b.detach()))
        self.optimize("d", m.gan_w * (loss_d_a + loss_d_b))
        out = {k: v.item() for k, v in losses.items()}
        out.update(d_a=loss_d_a.item(), d_b=loss_d_b.item(), g_total=loss_g.item())
        if m.adv_w > 0:
            out |= self._classifier_step(c_a.detach(), c_sim.detach())
        return out

    def _need_mask(self, mask_a: Tensor | None) -> Tensor:
        if mask_a is None:
            raise ConfigError(
                "model.masked_cycle / model.lambda_keep need a flood mask per A image; this batch "
                "has none (train on a FloodDataset: maskA/ beside trainA/ or model.mask_dir)"
            )
        return mask_a

    def _semantic(self, real_a: Tensor, fake_b: Tensor, mask_a: Tensor | None) -> Tensor:
        """The segmenter's labels of real_a against its logits on fake_b, outside the mask."""
        seg = self._segmenter[0]
        with torch.no_grad():
            logits_src = seg(real_a)  # (B, K, H, W): the target labels, no gradient
        logits_fake = seg(fake_b.float())  # gradients reach the generator through the segmenter
        if mask_a is None:  # no masks: every pixel must keep its label
            mask_a = torch.zeros_like(real_a[:, :1])
        return semantic_consistency(logits_fake, logits_src, mask_a)

    def _classifier_step(self, c_real: Tensor, c_sim: Tensor) -> dict[str, float]:
        """Train the sim-vs-real classifier on this step's (detached) content codes."""
        set_requires_grad(self.cls, True)
        cls = self.parallel(self.cls)
        with self.autocast():
            logits_real, logits_sim = cls(c_real).float(), cls(c_sim).float()
            loss_c = domain_classifier_loss(logits_real, logits_sim)
        self.optimize("c", loss_c)
        right = (logits_real > 0).sum() + (logits_sim <= 0).sum()
        acc = right.item() / (logits_real.numel() + logits_sim.numel())
        return {"cls": loss_c.item(), "cls_acc": acc}

    @torch.no_grad()
    def visuals(self, batch: Batch) -> list[Panel]:
        real_a, real_b = (x.to(self.device) for x in domains(batch, self.cfg.data.direction))
        n, dim = real_a.shape[0], self.m.style_dim
        g = torch.Generator().manual_seed(0)  # the same styles in every grid: progress shows
        styles = [torch.randn(n, dim, generator=g).to(self.device) for _ in range(2)]
        panels = []
        for real, src, dst, keys in (
            (real_a, self.gen_a, self.gen_b, ("real_a", "fake_b")),
            (real_b, self.gen_b, self.gen_a, ("real_b", "fake_a")),
        ):
            # no dropout and no running statistics here: train and eval mode compute the same
            content = src.enc_content(real)
            panel = {keys[0]: real, "rec": src.decode(content, src.enc_style(real))}
            for k, s in enumerate(styles):
                panel[f"{keys[1]}_{k}"] = dst.decode(content, s)
            panels.append(panel)
        return panels

    def inference_generator(self, direction: str | None = None) -> Generator:
        direction = direction or self.cfg.data.direction
        ch_a, ch_b = self.cfg.data.in_channels, self.cfg.data.out_channels
        if direction == "AtoB":
            src, dst, ch_in, ch_out = self.gen_a, self.gen_b, ch_a, ch_b
        elif direction == "BtoA":
            src, dst, ch_in, ch_out = self.gen_b, self.gen_a, ch_b, ch_a
        else:
            raise ConfigError(f"direction must be AtoB or BtoA, got {direction!r}")
        return Generator(
            MUNITTranslator(src, dst),
            ch_in,
            ch_out,
            src.size_multiple,
            style_dim=self.m.style_dim,
            style_encoder=dst.enc_style,
        )
