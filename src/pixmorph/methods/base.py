"""The method contract: what a method declares, and all that the trainer, inference and
evaluation may rely on.

A method declares its settings, its networks and which optimizer trains each, its data kind,
`train_step`, `visuals`, its inference entry points and its evaluation figures. The machinery
every method shares (optimizers, LR schedules, scalers, data-parallel wrappers, the speed plan,
resume, starting weights) belongs to the trainer, which hands the method a `Runtime`; the method
reaches it through `optimize`, `parallel` and `autocast` and never builds any of it itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from pixmorph.config import Config
from pixmorph.data.layouts import DataKind, make_dataset
from pixmorph.device import autocast
from pixmorph.errors import ConfigError
from pixmorph.losses.diffaugment import diff_augment

Batch = dict[str, Any]
Panel = dict[str, Tensor]  # one row group of a sample grid: column name -> (B, C, H, W) in [-1, 1]


@dataclass
class Generator:
    """An image-to-image network ready for inference: (B, in, H, W) -> (B, out, sH, sW) in [-1, 1].

    With `style_dim` > 0 the module is called as module(x, style) with a (B, style_dim) code
    (multimodal methods: one input, as many outputs as style codes).
    """

    module: nn.Module
    in_channels: int
    out_channels: int
    size_multiple: int  # input height and width must be multiples of this
    scale: int = 1  # output size / input size
    # inference splits inputs larger than `tile` px into overlapping tiles (bounded memory);
    # 0: always the whole image. Callers may override both.
    tile: int = 0
    tile_overlap: int = 0
    style_dim: int = 0
    # a style code taken from an example image of the output domain, when the method has one
    style_encoder: nn.Module | None = None


@dataclass
class Sampler:
    """An unconditional generator: module(z (B, latent_dim), truncation) -> (B, C, size, size)."""

    module: nn.Module
    latent_dim: int
    out_channels: int
    size: int


@dataclass
class SampleEvaluation:
    """How a generator is scored during training: its samples against the training images.

    FID, KID and k-NN precision/recall in the feature space of `feature_net` (inception: the
    Inception-v3 weights of `pixmorph evaluate --fid`; random: a seeded small CNN for tests).
    """

    count: int = 1000  # samples generated, and training images compared (at most)
    truncation: float = 1.0
    feature_net: str = "inception"
    inception_weights: str = ""  # "": the default places (see evaluation/inception_weights.py)
    k: int = 3  # neighbours that set each manifold ball's radius (precision/recall)
    seed: int = 0  # samples come from seeds seed, seed + 1, ...


@dataclass
class Baseline:
    """A reference prediction made without the model, scored with the same metrics."""

    name: str  # e.g. "bicubic"; names the report's baseline figures and images
    predict: Callable[[Tensor, tuple[int, int]], Tensor]  # (inputs, target (H, W)) -> (B, C, H, W)


@dataclass
class OptimizerSpec:
    """What one optimizer trains and how; unset values come from the run's train settings."""

    params: Iterable[Any]  # parameters, or param-group dicts (a group may carry "lr_scale")
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Flag:
    """A command-line flag of `pixmorph train` that stands for one setting of a method."""

    option: str  # e.g. "--scale"
    key: str  # the dotted setting it sets, e.g. "model.scale"
    type: type = str
    help: str = ""
    choices: tuple[Any, ...] | None = None


class Runtime:
    """How a method runs its networks: an inference build's (fp32, no optimizers).

    The trainer's runtime (training/runtime.py) adds optimizers, scalers and data-parallel
    wrappers behind the same three calls.
    """

    # images that go through one network in one step go as one batch where that gives the same
    # results (speed/plan.py: SpeedPlan.batch_passes)
    batch_passes = True

    def __init__(self, device: torch.device, precision: str = "fp32") -> None:
        self.device = device
        self.precision = precision

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.precision)

    def parallel(self, net: nn.Module) -> nn.Module:
        return net

    def optimize(self, name: str, loss: Tensor) -> None:
        raise RuntimeError("this model was built for inference: it has no optimizers")


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    """Freeze or unfreeze a network (the D is frozen while G is updated)."""
    for p in net.parameters():
        p.requires_grad_(flag)


class Method(nn.Module):
    """Base class of every method. Subclasses set the class attributes and the hooks below."""

    Config: ClassVar[type]  # the method's own settings (the `model:` section of a recipe)
    data_kind: ClassVar[DataKind] = "aligned"  # what the data folder holds (data/layouts.py)
    directions: ClassVar[tuple[str, ...]] = ("AtoB",)  # translation directions it can serve
    flags: ClassVar[tuple[Flag, ...]] = ()  # its own `pixmorph train` flags
    recipe: ClassVar[str] = ""  # its recipe in configs/ (the published settings)
    # settings that make it tiny (8-16 filters): the shared method tests and smoke runs use them
    tiny_settings: ClassVar[dict[str, Any]] = {}
    # whether train_step sends several passes through one network as one batch where
    # runtime.batch_passes allows (calibration times the setting only for such methods)
    batches_passes: ClassVar[bool] = False

    def __init__(self, cfg: Config, device: torch.device, training: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.device = device
        self.training_mode = training  # False: an inference build (no discriminators)
        self.runtime = Runtime(device)

    # --- what a method declares ------------------------------------------------------------
    @classmethod
    def default_overrides(cls) -> dict[str, Any]:
        """Settings outside `model:` whose defaults differ for this method (merged under the user's)."""
        return {}

    @classmethod
    def resolve(cls, cfg: Config) -> Config:
        """Fill in `auto` settings and reject combinations that cannot work; returns cfg."""
        return cfg

    @classmethod
    def dataset_options(cls, cfg: Config) -> dict[str, Any]:
        """Extra settings the data kind's dataset needs from this method (e.g. the SR scale)."""
        return {}

    @classmethod
    def make_dataset(cls, cfg: Config, train: bool, root: str | None = None) -> Dataset:
        """The dataset this method trains on (train=True) or is evaluated on (train=False)."""
        return make_dataset(cls.data_kind, cfg, train, root, **cls.dataset_options(cfg))

    @classmethod
    def eval_metrics(cls, cfg: Config, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """Figures of this method that evaluation adds to L1/PSNR/SSIM: name -> (B,) per image."""
        return {}

    @classmethod
    def eval_baseline(cls, cfg: Config) -> Baseline | None:
        """A model-free prediction evaluation scores alongside the model (e.g. bicubic), if any."""
        return None

    @classmethod
    def sample_evaluation(cls, cfg: Config) -> SampleEvaluation | None:
        """How train.eval_every scores a generator's samples; None: held-out paired metrics."""
        return None

    def optimizers(self) -> dict[str, OptimizerSpec]:
        """Each optimizer by name and what it trains (called once, on a training build)."""
        raise NotImplementedError

    def compile_pays(self) -> bool:
        """Whether torch.compile speeds this method up: by default, what its networks declare.

        A network class declares `compile_pays = True` where it was measured to gain (the ResNet
        generators: their many norm, padding and activation steps are what compile fuses).
        """
        return any(getattr(net, "compile_pays", False) for net in self.children())

    def train_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One explicit update of every network; returns named scalar losses."""
        raise NotImplementedError

    def visuals(self, batch: Batch) -> list[Panel]:
        """Images to show in a sample grid for this batch, as panels of named columns."""
        raise NotImplementedError

    def inference_generator(self, direction: str | None = None) -> Generator:
        """The network that translates images in `direction` (None: the method's default)."""
        raise ConfigError(f"{self.cfg.method} does not translate images; it generates them")

    def logits_generator(self, direction: str | None = None) -> Generator:
        """The network giving per-class logits (B, K, H, W), for methods that segment."""
        raise ConfigError(f"{self.cfg.method} gives images, not per-class logits")

    def sampler(self) -> Sampler | None:
        """The unconditional generator, for methods that generate images from noise."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """State beyond weights and optimizers (e.g. an image pool) that resuming needs."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what extra_state() returned."""

    # --- what a method calls ---------------------------------------------------------------
    @property
    def precision(self) -> str:
        return self.runtime.precision

    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision context of this run."""
        return self.runtime.autocast()

    def parallel(self, net: nn.Module) -> nn.Module:
        """The network to call in train_step: its data-parallel wrapper when there is one.

        Gradients are averaged across processes during backward through the wrapper. Call the
        bare network instead where no gradient for its own weights is wanted (a frozen D while G
        is updated), so no needless all-reduce happens.
        """
        return self.runtime.parallel(net)

    def optimize(self, name: str, loss: Tensor) -> None:
        """zero_grad, backward and step for one optimizer (scaled when training in fp16)."""
        self.runtime.optimize(name, loss)

    # a DiffAugment policy (losses/diffaugment.py); methods with a D set it from model.diffaugment
    augment: tuple[str, ...] = ()

    def d_view(self, *images: Tensor) -> tuple[Tensor, ...]:
        """Batches as a discriminator sees them: all transformed with one DiffAugment draw."""
        return diff_augment(*images, policy=self.augment)

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str | None = None) -> Tensor:
        """Translate a batch (B, C, H, W) in [-1, 1] with the generator in eval mode."""
        gen = self.inference_generator(direction)
        module = gen.module
        was_training = module.training
        module.eval()
        try:
            with self.autocast():
                x = x.to(self.device)
                if gen.style_dim:
                    # the zero code (the style prior's mean), as the Translator uses by default,
                    # so a trained method and its saved checkpoint translate alike
                    style = torch.zeros(x.shape[0], gen.style_dim, device=self.device)
                    return module(x, style).float()
                return module(x).float()
        finally:
            module.train(was_training)

    def load_weights(self, weights: dict[str, Tensor], source: str = "checkpoint") -> None:
        """Load the networks this instance has (an inference build lacks discriminators)."""
        own = self.state_dict()
        missing = [k for k in own if k not in weights]
        if missing:
            raise ValueError(
                f"{source} lacks {len(missing)} weights of this model, e.g. {missing[0]}"
            )
        self.load_state_dict({k: weights[k] for k in own})
