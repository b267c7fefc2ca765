"""The method contract: what the trainer, inference and evaluation may rely on.

A method owns its networks, losses and optimizers. The trainer only calls `train_step` and the
bookkeeping below; it never asks which method it is running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import Dataset

from pixmorph.config import Config
from pixmorph.device import autocast
from pixmorph.speed.plan import SpeedPlan, adam_options, compile_pays, resolve_speed, set_adam_impl

Batch = dict[str, Any]
Panel = dict[str, Tensor]  # one row group of a sample grid: column name -> (B, C, H, W) in [-1, 1]


@dataclass
class Generator:
    """An image-to-image network ready for inference: (B, in, H, W) -> (B, out, sH, sW) in [-1, 1]."""

    module: nn.Module
    in_channels: int
    out_channels: int
    size_multiple: int  # input height and width must be multiples of this
    scale: int = 1  # output size / input size
    # inference splits inputs larger than `tile` px into overlapping tiles (bounded memory);
    # 0: always the whole image. Callers may override both.
    tile: int = 0
    tile_overlap: int = 0


@dataclass
class Baseline:
    """A reference prediction made without the model, scored with the same metrics."""

    name: str  # e.g. "bicubic"; names the report's baseline figures and images
    predict: Callable[[Tensor, tuple[int, int]], Tensor]  # (inputs, target (H, W)) -> (B, C, H, W)


def linear_decay(total_steps: int, decay_start: float):
    """LR factor: 1 for the first `decay_start` fraction of steps, then linearly down to 0."""
    start = int(total_steps * decay_start)
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / span)

    return factor


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    """Freeze or unfreeze a network (the D is frozen while G is updated)."""
    for p in net.parameters():
        p.requires_grad_(flag)


class Method(nn.Module):
    """Base class of every method. Subclasses set `Config` and implement the hooks below."""

    Config: ClassVar[type]  # the method's own settings (the `model:` section of a recipe)
    directions: ClassVar[tuple[str, ...]] = ("AtoB",)  # translation directions it can serve

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.device = device
        self.training_mode = training
        # an inference build ignores how the run trained (an fp16 CUDA run loads on a CPU too)
        self.speed = (
            resolve_speed(cfg.train, device, cfg.data.crop_size, compile_pays(cfg))
            if training
            else SpeedPlan()
        )
        self.precision = self.speed.precision
        self.optimizers: dict[str, Optimizer] = {}
        self.schedulers: dict[str, LambdaLR] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # data-parallel wrappers by id of the wrapped network; a plain dict, so state_dict keys
        # never gain a "module." prefix
        self._parallel: dict[int, nn.Module] = {}

    # --- configuration hooks -------------------------------------------------------------
    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        """Settings outside `model:` whose defaults differ for this method (merged under the user's)."""
        return {}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        """Fill in `auto` settings and reject combinations that cannot work; returns cfg."""
        return cfg

    @classmethod
    def make_dataset(cls, cfg: Config, train: bool, root: str | None = None) -> Dataset:
        """The dataset this method trains on (train=True) or is evaluated on (train=False)."""
        raise NotImplementedError

    @classmethod
    def eval_metrics(cls, cfg: Config, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """Figures of this method that evaluation adds to L1/PSNR/SSIM: name -> (B,) per image."""
        return {}

    @classmethod
    def eval_baseline(cls, cfg: Config) -> Baseline | None:
        """A model-free prediction evaluation scores alongside the model (e.g. bicubic), if any."""
        return None

    # --- training ------------------------------------------------------------------------
    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One explicit update of every network; returns named scalar losses."""
        raise NotImplementedError

    def visuals(self, batch: Batch) -> list[Panel]:
        """Images to show in a sample grid for this batch, as panels of named columns."""
        raise NotImplementedError

    def inference_generator(self, direction: str | None = None) -> Generator:
        """The network that translates images in `direction` (None: the method's default)."""
        raise NotImplementedError

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str | None = None) -> Tensor:
        """Translate a batch (B, C, H, W) in [-1, 1] with the generator in eval mode."""
        gen = self.inference_generator(direction).module
        was_training = gen.training
        gen.eval()
        try:
            with self.autocast():
                return gen(x.to(self.device)).float()
        finally:
            gen.train(was_training)

    # --- shared machinery ----------------------------------------------------------------
    def distribute(self, device_ids: list[int] | None = None) -> None:
        """Wrap every trained network in DistributedDataParallel (call once, after loading)."""
        from torch.nn.parallel import DistributedDataParallel

        trained = {
            id(p) for o in self.optimizers.values() for g in o.param_groups for p in g["params"]
        }
        for _, net in self.named_children():
            params = list(net.parameters())
            if params and all(id(p) in trained for p in params):
                self._parallel[id(net)] = DistributedDataParallel(net, device_ids=device_ids)

    def undistribute(self) -> None:
        """Drop the data-parallel wrappers (before the process group goes away)."""
        self._parallel.clear()

    def parallel(self, net: nn.Module) -> nn.Module:
        """The network to call in train_step: its data-parallel wrapper when there is one.

        Gradients are averaged across processes during backward through the wrapper. Call the
        bare network instead where no gradient for its own weights is wanted (a frozen D while G
        is updated), so no needless all-reduce happens.
        """
        return self._parallel.get(id(net), net)

    def autocast(self):
        """The mixed-precision context of this run."""
        return autocast(self.device, self.precision)

    def add_optimizer(self, name: str, params) -> Optimizer:
        """An Adam with the run's LR and betas, plus its LR schedule and gradient scaler."""
        t = self.cfg.train
        opt = torch.optim.Adam(
            params, lr=t.lr, betas=(t.beta1, t.beta2), **adam_options(self.speed.adam)
        )
        self.optimizers[name] = opt
        self.schedulers[name] = LambdaLR(opt, linear_decay(t.steps, t.decay_start))
        self.scalers[name] = torch.amp.GradScaler(
            self.device.type, enabled=self.precision == "fp16"
        )
        return opt

    def optimize(self, name: str, loss: Tensor) -> None:
        """zero_grad, backward and step for one optimizer (scaled when training in fp16)."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def end_step(self) -> None:
        """Advance every LR schedule by one step."""
        for sched in self.schedulers.values():
            sched.step()

    def learning_rates(self) -> dict[str, float]:
        """The current LR of each optimizer, for logging."""
        return {f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

    def extra_state(self) -> dict[str, Any]:
        """State beyond weights and optimizers (e.g. an image pool) that resuming needs."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what extra_state() returned."""

    def training_state(self) -> dict[str, Any]:
        """Everything needed to continue training exactly."""
        return {
            "model": self.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "extra": self.extra_state(),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what training_state() returned."""
        self.load_state_dict(state["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
            set_adam_impl(o, self.speed.adam)  # the saved flags may name another device's kernel
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        for k, s in self.scalers.items():
            if state.get("scalers", {}).get(k):
                s.load_state_dict(state["scalers"][k])
        self.load_extra_state(state.get("extra", {}))

    def init_generator(self, path: str) -> None:
        """Start the default generator from a pixmorph checkpoint or a reference state dict."""
        # every key and shape must fit; a mismatch names the settings the file points to
        from pixmorph.interop.weights import generator_weights  # late: it builds methods

        module = self.inference_generator().module
        module.load_state_dict(generator_weights(path, module))

    def load_weights(self, weights: dict[str, Tensor], source: str = "checkpoint") -> None:
        """Load the networks this instance has (an inference build lacks discriminators)."""
        own = self.state_dict()
        missing = [k for k in own if k not in weights]
        if missing:
            raise ValueError(
                f"{source} lacks {len(missing)} weights of this model, e.g. {missing[0]}"
            )
        self.load_state_dict({k: weights[k] for k in own})
