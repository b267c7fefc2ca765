"""Images from noise: seeds, truncation, style mixing and interpolation with a generator checkpoint.

Seeds are the contract of reproducibility: image i of `generate(n, seed)` comes from z drawn by a
CPU torch.Generator seeded with seed + i, so any image can be made again alone, on any device.
Style mixing and interpolation work in w space (the mapping's output), where StyleGAN is
disentangled; a latent saved by `pixmorph project` stands wherever a seed does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pixmorph.config import Config
from pixmorph.data.images import to_pil
from pixmorph.errors import CheckpointError, ConfigError
from pixmorph.inference.export import is_exported
from pixmorph.inference.loading import load_method
from pixmorph.interop.weights import load_any
from pixmorph.methods.base import Method, Sampler
from pixmorph.methods.registry import get_method

Source = int | str | Path  # a seed, or a latent file written by `pixmorph project`


@dataclass
class LoadedSampler:
    """A generator checkpoint ready to sample: the Sampler, the run's config and its step."""

    sampler: Sampler
    config: Config
    step: int
    source: str

    @property
    def module(self) -> nn.Module:
        return self.sampler.module

    @property
    def device(self) -> torch.device:
        return next(self.module.buffers()).device

    @property
    def has_latents(self) -> bool:
        """Whether the module exposes mapping/synthesis (mixing, interpolation, projection)."""
        return all(hasattr(self.module, a) for a in ("mapping", "synthesis", "num_ws"))

    def require_latents(self, what: str) -> None:
        if not self.has_latents:
            raise ConfigError(
                f"{what} needs a style-based generator (mapping and synthesis); "
                f"{self.config.method} ({self.source}) only samples from z"
            )


def generates(path: str | Path) -> bool:
    """Whether a checkpoint (not an exported file) holds a method that samples from noise."""
    if is_exported(path):
        return False
    method_cls = get_method(str(load_any(path).get("config", {}).get("method", "")))
    return method_cls.sampler is not Method.sampler


def load_sampler(path: str | Path, device: str | torch.device = "auto") -> LoadedSampler:
    """The sampler of a generator checkpoint or run folder; a translator is a CheckpointError."""
    method, ckpt = load_method(path, device)
    sampler = method.sampler()
    if sampler is None:
        raise CheckpointError(
            f"{path} holds a {method.cfg.method} model, which translates images and does not "
            "generate them: use `pixmorph translate --checkpoint` with it, or give a checkpoint "
            "of a generator method (stylegan)"
        )
    sampler.module.eval()
    return LoadedSampler(sampler, method.cfg, int(ckpt.get("step", 0)), str(path))


def z_from_seed(seed: int, latent_dim: int) -> Tensor:
    """z (1, latent_dim) of a seed: a standard normal draw from a CPU generator (device-free)."""
    return torch.randn(1, latent_dim, generator=torch.Generator().manual_seed(int(seed)))


def seed_latents(seeds: list[int], latent_dim: int) -> Tensor:
    """z (len(seeds), latent_dim), row k from seeds[k]."""
    return torch.cat([z_from_seed(s, latent_dim) for s in seeds])


def as_loaded(model: LoadedSampler | str | Path, device: str | torch.device) -> LoadedSampler:
    return model if isinstance(model, LoadedSampler) else load_sampler(model, device)


@torch.no_grad()
def generate(
    model: LoadedSampler | str | Path,
    n: int = 1,
    seed: int = 0,
    truncation: float = 1.0,
    batch_size: int = 16,
    device: str | torch.device = "auto",
) -> Tensor:
    """n images (n, C, H, W) in [-1, 1] from a generator checkpoint; image i from seed + i."""
    if n < 1:
        raise ConfigError(f"n={n}: generate at least one image")
    m = as_loaded(model, device)
    out = []
    for start in range(0, n, batch_size):
        seeds = list(range(seed + start, seed + min(n, start + batch_size)))
        z = seed_latents(seeds, m.sampler.latent_dim).to(m.device)
        out.append(m.module(z, truncation).float().clamp(-1, 1).cpu())
    return torch.cat(out)


def load_latent(path: str | Path) -> dict[str, Any]:
    """A latent file of `pixmorph project`: {"ws": (1, num_ws, w_dim), ...} (weights_only)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"latent file {p} does not exist (write one with pixmorph project)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{p} could not be read as a latent file ({e})") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("ws"), Tensor):
        raise CheckpointError(f"{p} is not a pixmorph latent file (it has no 'ws' tensor)")
    return obj


@torch.no_grad()
def ws_of(m: LoadedSampler, sources: list[Source], truncation: float = 1.0) -> Tensor:
    """ws (len(sources), num_ws, w_dim): a seed through the mapping, a latent file as saved."""
    m.require_latents("working in w space")
    module: Any = m.module
    rows = []
    for s in sources:
        if isinstance(s, int):
            rows.append(
                module.mapping(z_from_seed(s, m.sampler.latent_dim).to(m.device), truncation)
            )
            continue
        ws = load_latent(s)["ws"].to(m.device)
        if ws.dim() == 2:
            ws = ws[None]
        if ws.shape[1:] != (module.num_ws, module.w_avg.shape[0]):
            raise CheckpointError(
                f"{s}: ws of shape {tuple(ws.shape)} do not fit this generator "
                f"(1, {module.num_ws}, {module.w_avg.shape[0]}); project with the same checkpoint"
            )
        rows.append(ws)
    return torch.cat(rows)


@torch.no_grad()
def synthesize(m: LoadedSampler, ws: Tensor) -> Tensor:
    """Images (B, C, H, W) in [-1, 1] of ws, with the generator's fixed noise."""
    m.require_latents("synthesis from ws")
    module: Any = m.module
    return module.synthesis(ws.to(m.device)).float().clamp(-1, 1).cpu()


def mixed_ws(coarse: Tensor, fine: Tensor, mix_from: int) -> Tensor:
    """Every (row, col) pair: ws[:mix_from] of coarse[row], the rest of fine[col]: (R*C, L, D)."""
    c = fine.shape[0]
    out = coarse[:, None].repeat(1, c, 1, 1)  # (R, C, L, D)
    out[:, :, mix_from:] = fine[None, :, mix_from:]
    return out.flatten(0, 1)


@dataclass
class MixGrid:
    """A style-mixing figure: row sources give coarse styles, column sources the fine ones."""

    rows: Tensor  # (R, C, H, W) the row sources' own images
    cols: Tensor  # (K, C, H, W) the column sources' own images
    cells: Tensor  # (R, K, C, H, W) cell (r, k): coarse of rows[r], fine of cols[k]

    def image(self) -> Tensor:
        """One (C, (R+1)H, (K+1)W) picture: column sources on top, row sources on the left."""
        r, k, ch, h, w = self.cells.shape
        out = torch.ones(ch, (r + 1) * h, (k + 1) * w)  # a white corner
        for j in range(k):
            out[:, :h, (j + 1) * w : (j + 2) * w] = self.cols[j]
        for i in range(r):
            out[:, (i + 1) * h : (i + 2) * h, :w] = self.rows[i]
            for j in range(k):
                out[:, (i + 1) * h : (i + 2) * h, (j + 1) * w : (j + 2) * w] = self.cells[i, j]
        return out


def check_mix_from(m: LoadedSampler, mix_from: int) -> None:
    num_ws = m.module.num_ws  # type: ignore[union-attr]
    if not 0 < mix_from < num_ws:
        raise ConfigError(
            f"--mix-from {mix_from}: choose a layer in [1, {num_ws - 1}] (this generator has "
            f"{num_ws} style inputs; low values take more from the column sources)"
        )


@torch.no_grad()
def style_mix(
    m: LoadedSampler,
    rows: list[Source],
    cols: list[Source],
    mix_from: int,
    truncation: float = 1.0,
) -> MixGrid:
    """Mix the coarse styles (ws[:mix_from]) of each row source with the fine ones of each column."""
    m.require_latents("style mixing")
    check_mix_from(m, mix_from)
    ws_r, ws_c = ws_of(m, rows, truncation), ws_of(m, cols, truncation)
    cells = synthesize(m, mixed_ws(ws_r, ws_c, mix_from))
    return MixGrid(
        synthesize(m, ws_r),
        synthesize(m, ws_c),
        cells.unflatten(0, (len(rows), len(cols))),
    )


@torch.no_grad()
def interpolate(
    m: LoadedSampler, a: Source, b: Source, frames: int = 8, truncation: float = 1.0
) -> Tensor:
    """frames images (F, C, H, W) along the straight line in w space from a to b (both ends)."""
    if frames < 2:
        raise ConfigError(f"--frames {frames}: an interpolation needs at least 2 frames")
    ws = ws_of(m, [a, b], truncation)
    t = torch.linspace(0, 1, frames, device=ws.device)[:, None, None]
    return synthesize(m, ws[0:1].lerp(ws[1:2], t))


def tile(images: Tensor, cols: int = 8, pad: int = 0) -> Tensor:
    """(N, C, H, W) -> one (C, rows*H, cols*W) picture, row-major, white where no image is."""
    n, ch, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    out = torch.ones(ch, rows * (h + pad) - pad, cols * (w + pad) - pad)
    for i in range(n):
        r, c = divmod(i, cols)
        out[:, r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return out


def save_gif(frames: Tensor, path: str | Path, ms_per_frame: int = 80, bounce: bool = True) -> Path:
    """An animated GIF of frames (F, C, H, W) in [-1, 1]; bounce: forth, then back again."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    images = [to_pil(f) for f in frames]
    if bounce and len(images) > 2:
        images += images[-2:0:-1]
    images[0].save(p, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return p
