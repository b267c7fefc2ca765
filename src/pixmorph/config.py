"""Typed run configuration: dataclasses, YAML I/O and checked `key=value` overrides."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pixmorph.errors import ConfigError

Direction = Literal["AtoB", "BtoA"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
BestMetric = Literal["psnr", "ssim", "l1", "fid", "kid", "none"]
AdamImpl = Literal["auto", "fused", "foreach", "loop"]
Allocator = Literal["auto", "reuse", "system"]
LRPolicy = Literal["linear", "step", "constant"]
OnNonFinite = Literal["stop", "rollback"]


def ranged(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A dataclass field whose value must lie in [lo, hi]; from_dict checks it."""
    return field(default=default, metadata={"range": (lo, hi)})


def check_range(key: str, value: Any, bounds: tuple[float | None, float | None]) -> None:
    """A ConfigError naming the setting and its allowed range when value lies outside it."""
    lo, hi = bounds
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        allowed = (
            f"from {lo:g} to {hi:g}"
            if lo is not None and hi is not None
            else f">= {lo:g}"
            if lo is not None
            else f"<= {hi:g}"
        )
        raise ConfigError(f"{key}={value!r} is out of range: it must be {allowed}")


def load_size_for(crop_size: int) -> int:
    """The load size that keeps the published 286/256 ratio of resize to random crop."""
    return round(crop_size * 286 / 256)


@dataclass
class DataConfig:
    """Where the images are and how they are prepared."""

    root: str = ""  # a folder of images, or a root holding train/ (and val/ or test/)
    root_a: str = ""  # unpaired methods: domain A's folder instead of root/trainA
    root_b: str = ""  # unpaired methods: domain B's folder instead of root/trainB
    direction: Direction = "AtoB"
    load_size: int = ranged(286, 1)
    crop_size: int = ranged(256, 8)
    preprocess: Preprocess = "resize_and_crop"
    flip: bool = True
    # training: random quarter turns too (with flip: all eight orientations), for images without
    # an up or down (super-resolution patches, textures, aerial views); square crops only
    rotate: bool = False
    in_channels: int = ranged(3, 1)
    out_channels: int = ranged(3, 1)
    num_workers: int = ranged(0, 0)
    cache: bool = False  # keep decoded images in memory
    verify: bool = True  # decode every file once at start, so bad files fail early
    skip_bad_files: bool = False  # drop unreadable/ill-shaped files with a counted warning
    max_images: int = ranged(0, 0)  # 0: all
    # held out for evaluation when the root has no test/ or val/ folder (seeded by train.seed;
    # docs/quality.md); 0: none
    val_fraction: float = ranged(0.0, 0.0, 0.9)


@dataclass
class TrainConfig:
    """The optimisation schedule and the loop's bookkeeping."""

    steps: int = ranged(20000, 1)
    batch_size: int = ranged(1, 1)
    lr: float = ranged(2e-4, 0.0)
    beta1: float = ranged(0.5, 0.0, 1.0)
    beta2: float = ranged(0.999, 0.0, 1.0)
    decay_start: float = ranged(0.5, 0.0, 1.0)  # fraction of steps at constant LR, then decay
    # linear: constant, then linear decay to 0 (decay_start); step: x lr_gamma every lr_step_every
    # steps; constant: no schedule
    lr_policy: LRPolicy = "linear"
    lr_step_every: int = ranged(100_000, 1)
    lr_gamma: float = ranged(0.5, 0.0, 1.0)
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    precision: Precision = "auto"  # auto: bf16 where native and it pays, else fp32; docs/speed.md
    channels_last: bool | Literal["auto"] = "auto"  # auto: on CUDA with bf16/fp16 only
    compile: bool | Literal["auto"] = "auto"  # auto: ResNets in runs of 2000+ steps (CPU: bf16)
    adam: AdamImpl = "auto"  # auto: fused where the device has it, else foreach
    small_maps: bool | Literal["auto"] = "auto"  # auto: on CPU, convs on <=8x8 maps as matmul
    # several passes through one network as one batch (CycleGAN, CUT); auto: on, timed on CPUs
    # whose class was not measured
    batch_passes: bool | Literal["auto"] = "auto"
    allocator: Allocator = "auto"  # auto: reuse freed host memory (glibc, CPU); system: leave it
    calibrate: bool | Literal["auto"] = "auto"  # auto: time unmeasured CPUs' auto settings in
    # runs of 1000+ steps, once per machine and size (docs/speed.md)
    log_every: int = ranged(10, 1)
    sample_every: int = ranged(200, 0)  # 0: no sample grids
    checkpoint_every: int = ranged(500, 1)
    keep_checkpoints: int = ranged(2, 0)  # step_*.pt files kept besides latest.pt
    # a NaN/Inf loss or weight: stop (with a message), or roll back to latest.pt, scale the LR by
    # rollback_lr_factor and go on, at most max_rollbacks times (docs/robustness.md)
    on_nonfinite: OnNonFinite = "stop"
    rollback_lr_factor: float = ranged(0.5, 0.0, 1.0)
    max_rollbacks: int = ranged(3, 1)
    num_samples: int = ranged(4, 1)  # images in each sample grid
    init_generator: str = ""  # weights file the generator starts from (fine-tuning); "": none
    eval_every: int = ranged(0, 0)  # steps between held-out evaluations; 0: off
    best_metric: BestMetric = "psnr"  # eval metric that picks checkpoints/best.pt; none: no best
    # paired held-out evaluation also gives the KID of the translations against the targets
    # (Inception features: the weights must be installed, docs/evaluation.md)
    eval_kid: bool = False
    # minutes of wall-clock training; the LR schedule spans them and train.steps is unused; 0: off
    time_budget: float = ranged(0.0, 0.0)
    # images over which the weight of a generator update in its moving average halves; the
    # average is what samples, evaluation and translation use (docs/quality.md); 0: no average
    ema_half_life: float = ranged(0.0, 0.0)
    ema_rampup: float = ranged(0.0, 0.0)  # > 0: cap the half-life at ema_rampup * images seen
    ema_every: int = ranged(1, 1)  # fold the weights into the average every N steps (CPU time)


@dataclass
class LogConfig:
    """Where training records go besides metrics.jsonl (each sink is optional)."""

    tensorboard: bool = False  # event files in RUN/tensorboard (pip install tensorboard)
    wandb: bool = False  # a Weights & Biases run (pip install wandb; WANDB_MODE=offline works)
    wandb_project: str = "pixmorph"


@dataclass
class Config:
    """A whole run: which method, on what data, trained how. `model` is the method's own config."""

    method: str = "pix2pix"
    out: str = "runs/pix2pix"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    model: Any = None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of primitives (safe for YAML, JSON and weights-only checkpoints)."""
    return dataclasses.asdict(cfg)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting only lossless cases (int -> float)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not valid; {_describe(tp)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: {value!r} fits none of {tp}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    return value  # Any


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and ill-typed values."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown setting {prefix}{unknown[0]}; valid keys under "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    for f in dataclasses.fields(cls):
        if f.name in kwargs and "range" in f.metadata:
            check_range(prefix + f.name, kwargs[f.name], f.metadata["range"])
    return cls(**kwargs)


def parse_value(text: str) -> Any:
    """A command-line value, read as YAML (so 3 is an int, 1e-4 a float, true a bool)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML reads 1e-4 (no dot) as a string; accept it as the number it looks like
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c=value` in a nested dict, creating the intermediate mappings."""
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part} is a value, not a group of settings")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["train.steps=10", "model.lambda_l1=50"]` -> a nested dict."""
    tree: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.steps=1000)")
        key, text = item.split("=", 1)
        if not key:
            raise ConfigError(f"override {item!r} has no key")
        set_dotted(tree, key.strip(), parse_value(text))
    return tree


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `update` into a copy of `base`."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a recipe file; a missing file or a non-mapping is a ConfigError naming it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {p} must hold a mapping of settings, not {type(data).__name__}")
    return data


def write_yaml(path: str | Path, data: dict[str, Any]) -> None:
    """Write a plain dict as YAML, keys in definition order."""
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
