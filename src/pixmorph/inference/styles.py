"""Multimodal translation: several outputs per input from style codes (MUNIT-like generators).

A multimodal `Generator` (style_dim > 0) renders one input in any style code. Users get K codes
drawn N(0, I) from a seed (the same seed gives the same codes, so the same pixels), or the code
of an example image of the target domain through the generator's style encoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from pixmorph.data.images import convert_mode, to_tensor
from pixmorph.device import autocast
from pixmorph.errors import ConfigError
from pixmorph.inference.translator import Translator, translate


def require_multimodal(translator: Translator, option: str) -> int:
    """The generator's style_dim; ConfigError naming `option` when it has no style codes."""
    dim = translator.generator.style_dim
    if dim < 1:
        raise ConfigError(
            f"{option} needs a multimodal model (one with style codes, e.g. MUNIT); this "
            f"{translator.config.method} model has one output per input: drop {option} "
            "(an exported ONNX/TorchScript file has its style baked in: use the checkpoint)"
        )
    return dim


def random_styles(translator: Translator, k: int, seed: int = 0) -> Tensor:
    """(k, style_dim) codes drawn N(0, I) from `seed`, on CPU: equal seeds give equal codes."""
    dim = require_multimodal(translator, "--styles")
    if k < 1:
        raise ConfigError(f"--styles {k}: ask for at least 1 style per input")
    # a private generator: reproducible whatever else has drawn from the global RNG
    return torch.randn(k, dim, generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
def encode_style(translator: Translator, example: Image.Image | Tensor) -> Tensor:
    """(style_dim,) code of an example image of the output domain (the style encoder's)."""
    require_multimodal(translator, "--style-from")
    g = translator.generator
    if g.style_encoder is None:
        raise ConfigError(
            f"--style-from: this {translator.config.method} model has no style encoder; use "
            "--styles K for random styles"
        )
    if isinstance(example, Image.Image):
        x = to_tensor(convert_mode(example, g.out_channels))
    else:
        x = example.float()
    x = x if x.dim() == 4 else x.unsqueeze(0)  # (1, C_out, H, W)
    if x.shape[1] != g.out_channels:
        raise ConfigError(
            f"--style-from: the example has {x.shape[1]} channels; the target domain has "
            f"{g.out_channels}"
        )
    # the encoder pools globally, so any size works and no padding biases its statistics
    with autocast(translator.device, translator.precision):
        return g.style_encoder(x.to(translator.device)).float()[0].cpu()


def with_style(translator: Translator, style: Tensor) -> Translator:
    """The same translator with every image rendered in one (style_dim,) code."""
    dim = require_multimodal(translator, "style")
    return dataclasses.replace(translator, style=style.reshape(dim).to(translator.device))


def translate_styles(
    translator: Translator,
    images: Sequence[Image.Image | Tensor] | Image.Image | Tensor,
    styles: int | Tensor = 1,
    seed: int = 0,
    batch_size: int = 4,
    fit: str = "pad",
    on_batch: Callable[[int], Any] | None = None,
) -> list[list[Any]]:
    """Each input in K styles: result[i][k] is input i in style k (PIL in, PIL out).

    `styles` is K (codes drawn N(0, I) from `seed`, see random_styles) or a (K, style_dim)
    tensor of codes. A single image or tensor still gives one list per input: [[k0, k1, ...]].
    """
    codes = random_styles(translator, styles, seed) if isinstance(styles, int) else styles
    require_multimodal(translator, "styles")
    single = isinstance(images, Image.Image) or (isinstance(images, Tensor) and images.dim() == 3)
    items = [images] if single else images
    per_style = [
        translate(with_style(translator, code), items, batch_size, fit, on_batch)  # type: ignore[arg-type]
        for code in codes
    ]
    n = len(per_style[0])
    return [[out[i] for out in per_style] for i in range(n)]


class FixedStyle(nn.Module):
    """A multimodal network with one style code built in: module(x) = net(x, style)."""

    def __init__(self, net: nn.Module, style: Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("style", style.reshape(1, -1).float())  # (1, style_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.style.expand(x.shape[0], -1))
