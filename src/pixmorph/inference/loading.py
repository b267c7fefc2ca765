"""Load a trained generator for inference: a pixmorph checkpoint or run folder, a published
pix2pix/CycleGAN state dict, or an exported ONNX/TorchScript file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pixmorph.checkpoint import inference_weights
from pixmorph.device import pick_device, resolve_precision
from pixmorph.inference.export import is_exported, load_exported
from pixmorph.inference.translator import Translator
from pixmorph.interop.weights import load_any
from pixmorph.methods.base import Method
from pixmorph.methods.registry import get_method
from pixmorph.methods.settings import config_from_dict
from pixmorph.speed.plan import (
    compile_for_inference,
    inference_channels_last,
    prepare_for_inference,
)


def load_method(
    path: str | Path,
    device: str | torch.device = "auto",
    direction: str | None = None,
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
) -> tuple[Method, dict[str, Any]]:
    """An inference build of a checkpoint's method (weights loaded, eval mode), and the file."""
    ckpt = load_any(path, direction, arch, norm, dropout)
    cfg = config_from_dict(ckpt["config"])
    dev = device if isinstance(device, torch.device) else pick_device(device)
    method = get_method(cfg.method)(cfg, dev, training=False)
    method.load_weights(inference_weights(ckpt), source=str(path))
    method.eval()
    return method, ckpt


def load_logits(
    path: str | Path, direction: str | None = None, device: str | torch.device = "cpu"
) -> Translator:
    """The per-class logits network of a segmentation checkpoint, fp32, as a Translator."""
    method, ckpt = load_method(path, device, direction)
    gen = method.logits_generator(direction)
    gen.module.eval()
    return Translator(gen, method.cfg, direction, method.device, "fp32", int(ckpt.get("step", 0)))


def load_generator(
    path: str | Path,
    direction: str | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
) -> Translator:
    """Load the generator of a pixmorph checkpoint (a file or a run folder) for inference.

    A plain pix2pix/CycleGAN state dict is imported on the fly; arch, norm and dropout apply to
    such files only, and are read off the file where not given. `tile`/`overlap` (input px)
    bound memory on large images; None keeps the model's default. `precision` auto: bf16 where
    the device runs it natively (fp16 on older GPUs), else fp32; bf16/fp16 weights are cast
    once. channels_last None: where it pays (see accel.inference_channels_last). `compile`:
    torch.compile with the weights frozen in (10-60 s at the first image and at each new input
    size, then faster per image; see accel.compile_for_inference). An exported
    .onnx or .torchscript file loads as well (it runs as exported, in fp32).
    """
    if is_exported(path):
        return load_exported(path, direction, device)
    method, ckpt = load_method(path, device, direction, arch, norm, dropout)
    cfg, dev = method.cfg, method.device
    gen = method.inference_generator(direction)
    gen.module.eval()
    precision = resolve_precision(precision, dev)
    cl = (
        inference_channels_last(gen.module, precision, dev)
        if channels_last is None
        else channels_last
    )
    prepare_for_inference(gen.module, precision, cl)
    if compile:
        compile_for_inference(gen.module)
    translator = Translator(
        gen, cfg, direction, dev, precision, int(ckpt.get("step", 0)), tile, overlap
    )
    translator.tiling()  # bad tile settings fail here, before any image is read
    return translator
