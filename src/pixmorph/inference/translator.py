"""Load a trained generator and translate images of any size, from Python or the CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from pixmorph.config import Config
from pixmorph.data.batching import same_size_runs
from pixmorph.data.images import convert_mode, to_pil, to_tensor
from pixmorph.data.transforms import Augment, orient, upright
from pixmorph.device import autocast
from pixmorph.errors import ConfigError
from pixmorph.inference import autotile
from pixmorph.inference.tiling import translate_tiled
from pixmorph.methods.base import Generator

log = logging.getLogger(__name__)


@dataclass
class Translator:
    """A loaded generator plus what it needs to take images of any size."""

    generator: Generator
    config: Config
    direction: str | None
    device: torch.device
    precision: str = "fp32"
    step: int = 0
    tile: int | None = None  # inputs larger than this (px) run in tiles; None: the model's default
    overlap: int | None = None  # px shared by neighbouring tiles; None: the model's default
    # multimodal generators (Generator.style_dim > 0): the (style_dim,) code every image gets;
    # None: the zero code, the mean of the style prior
    style: Tensor | None = None
    # bytes one forward pass may use; a whole image that needs more runs in tiles (when `tile`
    # is None and the model has no default tile). None: $PIXMORPH_MEMORY_BUDGET or 1/4 free
    memory_budget: int | None = None
    # geometric self-ensemble: the mean of the outputs of this many orientations of each input
    # (1: the input as it is; 2: and its mirror image; 8: every flip and quarter turn). Up to 8x
    # the time; sharpens super-resolution by averaging out orientation-dependent errors
    ensemble: int = 1
    _bytes_per_px: float | None = field(default=None, init=False, repr=False)

    def tiling(self) -> tuple[int, int]:
        """(tile, overlap) in input px after defaults; tile 0 means whole images."""
        g = self.generator
        tile = g.tile if self.tile is None else self.tile
        overlap = g.tile_overlap if self.overlap is None else self.overlap
        if tile and (tile % g.size_multiple or overlap >= tile or overlap < 0):
            raise ConfigError(
                f"--tile {tile} / --overlap {overlap}: the tile must be a multiple of "
                f"{g.size_multiple} (this generator's size multiple) and larger than the "
                "overlap, which must be >= 0; --tile 0 translates whole images"
            )
        return tile, overlap

    def style_codes(self, n: int) -> Tensor:
        """(n, style_dim): this translator's style code for each of n images."""
        dim = self.generator.style_dim
        code = torch.zeros(dim) if self.style is None else self.style.reshape(dim)
        return code.to(self.device).expand(n, dim)

    @property
    def in_channels(self) -> int:
        return self.generator.in_channels

    @property
    def out_channels(self) -> int:
        return self.generator.out_channels

    @torch.inference_mode()
    def __call__(self, x: Tensor, fit: str = "pad") -> Tensor:
        """Translate a batch (B, C, H, W) in [-1, 1] of any H, W; output is scale x (H, W)."""
        g = self.generator
        if x.shape[1] != g.in_channels:
            raise ValueError(f"the generator takes {g.in_channels} channels, got {x.shape[1]}")
        h, w = x.shape[2:]
        m = g.size_multiple
        x = x.to(self.device)
        if fit == "pad":
            ph, pw = (-h) % m, (-w) % m
            if ph or pw:
                # replicate padding works for any amount (reflect needs pad < size)
                x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        elif fit == "resize":
            th, tw = max(m, round(h / m) * m), max(m, round(w / m) * m)
            if (th, tw) != (h, w):
                x = F.interpolate(x, size=(th, tw), mode="bicubic", align_corners=False)
        else:
            raise ValueError(f"fit must be 'pad' or 'resize', got {fit!r}")
        tile, overlap = self.tiling()

        def once(t: Tensor) -> Tensor:
            with autocast(self.device, self.precision):
                if g.style_dim:
                    return g.module(t, self.style_codes(t.shape[0])).float()
                return g.module(t).float()

        def run(t: Tensor) -> Tensor:
            return ensembled(once, t, self.ensemble)

        if not tile and self.tile is None:
            tile, overlap = self.auto_tiling(x, run)
        s = g.scale
        if tile and max(x.shape[2:]) > tile:
            # tiles keep memory at one tile's activations; tile is a multiple of m, so every
            # tile (and an axis shorter than a tile, already padded to m) fits the generator
            y = translate_tiled(run, x, tile, overlap, s)
        else:
            y = run(x)
        if fit == "pad":
            top, left = ((-h) % m) // 2 * s, ((-w) % m) // 2 * s
            y = y[:, :, top : top + h * s, left : left + w * s]
        elif tuple(y.shape[2:]) != (h * s, w * s):
            y = F.interpolate(y, size=(h * s, w * s), mode="bicubic", align_corners=False)
        # in place: y is this call's own tensor, and may be large; a copy only when cut or
        # channels_last
        return y.clamp_(-1, 1).contiguous()

    def auto_tiling(self, x: Tensor, run: Callable[[Tensor], Tensor]) -> tuple[int, int]:
        """(tile, overlap) for x (B, C, H, W) under the memory budget; (0, 0): whole image."""
        g = self.generator
        if self._bytes_per_px is None:
            side = autotile.measure_side(g.size_multiple)
            probe = x.new_zeros((1, g.in_channels, side, side))
            self._bytes_per_px = autotile.bytes_per_pixel(run, g.module, probe)
        budget = autotile.memory_budget(self.memory_budget, self.device)
        tile = autotile.fit_tile(self._bytes_per_px, tuple(x.shape), budget, g.size_multiple)
        if tile:
            need = self._bytes_per_px * x.shape[0] * x.shape[2] * x.shape[3]
            log.info(
                "%dx%d px needs ~%.1f GiB for whole-image inference, over the %.1f GiB budget: "
                "translating in %d px tiles (--tile / --memory-budget choose)",
                x.shape[3],
                x.shape[2],
                need / 2**30,
                budget / 2**30,
                tile,
            )
        return tile, tile // 4


ENSEMBLES = (1, 2, 8)


def ensembled(run: Callable[[Tensor], Tensor], x: Tensor, n: int) -> Tensor:
    """The mean of run over n orientations of x (ENSEMBLES), each turned back upright."""
    if n not in ENSEMBLES:
        raise ConfigError(f"--ensemble {n}: choose one of {', '.join(map(str, ENSEMBLES))}")
    if n == 1:
        return run(x)
    total = None
    for k in range(n):
        aug = Augment(0.5, 0.5, flip=k % 2 == 1, turns=k // 2)
        y = upright(run(orient(x, aug)), aug)
        total = y if total is None else total.add_(y)
    return total.div_(n)


def _as_tensor(img: Image.Image | Tensor, channels: int) -> Tensor:
    if isinstance(img, Image.Image):
        return to_tensor(convert_mode(img, channels))
    t = img if img.dim() == 3 else img.squeeze(0)
    return t.float()


def translate(
    translator: Translator,
    images: Sequence[Image.Image | Tensor] | Image.Image | Tensor,
    batch_size: int = 4,
    fit: str = "pad",
    on_batch: Callable[[int], Any] | None = None,
) -> list[Image.Image] | Tensor:
    """Translate PIL images (returns PIL images) or a tensor batch (returns a tensor).

    Images of equal size are batched together; each output has its input's size (x scale).
    """
    if isinstance(images, Tensor) and images.dim() == 4:
        return translator(images, fit=fit).cpu()
    single = isinstance(images, Image.Image | Tensor)
    items: list[Image.Image | Tensor] = [images] if single else list(images)  # type: ignore[list-item]
    tensors = [_as_tensor(im, translator.in_channels) for im in items]
    outputs: list[Tensor | None] = [None] * len(tensors)
    for group in _batches_by_size(tensors, batch_size):
        # a lone image is a view, not a copy: large images are often alone in their group
        batch = (
            tensors[group[0]][None] if len(group) == 1 else torch.stack([tensors[i] for i in group])
        )
        out = translator(batch, fit=fit).cpu()
        for j, i in enumerate(group):
            outputs[i] = out[j]
        if on_batch:
            on_batch(len(group))
    if all(isinstance(im, Tensor) for im in items):
        result: Any = [o for o in outputs]
        return result[0] if single else result
    pils = [to_pil(o) for o in outputs]  # type: ignore[arg-type]
    return pils[0] if single else pils


def _batches_by_size(tensors: list[Tensor], batch_size: int) -> Iterable[list[int]]:
    """Indices of same-size images in batches, sizes in order of first appearance."""
    first: dict[tuple[int, ...], int] = {}
    for i, t in enumerate(tensors):
        first.setdefault(tuple(t.shape), i)
    order = sorted(range(len(tensors)), key=lambda i: first[tuple(tensors[i].shape)])
    return same_size_runs(order, batch_size, lambda i: tuple(tensors[i].shape))
