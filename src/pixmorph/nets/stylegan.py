"""The style-based generator (StyleGAN / StyleGAN2, Karras et al. 2019, 2020) and its mapping.

z (B, z_dim) -> mapping -> w (B, w_dim), broadcast to ws (B, num_ws, w_dim) -> synthesis -> image.
Synthesis starts from a learned 4x4 constant; every resolution has two 3x3 styled convs (the 4x4
one has one) and a toRGB whose outputs are upsampled and summed (the skip architecture). ws[:, i]
drives conv i and the toRGB of the block before conv i; ws[:, -1] the last toRGB.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from pixmorph.nets.stylegan_layers import (
    EqualLinear,
    NoiseMode,
    StyledConv,
    ToRGB,
    Upsample,
    check_upsample,
    upsample2x,
)

Modulation = Literal["demod", "adain"]


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: min(channel_base / res, channel_max)."""
    # The default channel_base 32768 gives the published widths: 512 up to 64 px, then halving
    # to 32 at 1024. (The papers' fmap_base of 16384 is divided by res / 2, not by res.)
    return min(channel_base // res, channel_max)


def check_size(size: int, option: str = "size") -> int:
    """log2(size) for a power-of-two size >= 4, else a ValueError naming the option."""
    log = int(math.log2(size)) if size > 0 else 0
    if size < 4 or 2**log != size:
        raise ValueError(f"StyleGAN {option} must be a power of two >= 4 (e.g. 256), got {size!r}")
    return log


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale each row to unit second moment: z lands on the sphere of radius sqrt(z_dim)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> pixel norm -> n_layers dense LeakyReLU layers -> w (B, w_dim)."""

    def __init__(
        self, z_dim: int = 512, w_dim: int = 512, n_layers: int = 8, lr_mul: float = 0.01
    ) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.Sequential(
            *(
                EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation=True)
                for i in range(n_layers)
            )
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(pixel_norm(z))  # (B, w_dim)


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling) styled convs, then a toRGB."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        modulation: Modulation,
        upsample: Upsample,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))  # the learned input
            convs = [StyledConv(out_ch, out_ch, w_dim, 4, modulation)]
        else:
            convs = [
                StyledConv(in_ch, out_ch, w_dim, resolution, modulation, upsample),
                StyledConv(out_ch, out_ch, w_dim, resolution, modulation),
            ]
        self.convs = nn.ModuleList(convs)
        self.torgb = ToRGB(out_ch, w_dim, img_channels)

    @property
    def num_conv(self) -> int:
        return len(self.convs)

    def forward(self, x: Tensor | None, ws: Tensor, noise_mode: NoiseMode) -> tuple[Tensor, Tensor]:
        """Features (B, out, R, R) and this block's RGB (B, C, R, R); ws is (B, num_conv + 1, w_dim)."""
        if x is None:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # (B, out, 4, 4)
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i], noise_mode)
        return x, self.torgb(x, ws[:, self.num_conv])


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, img_channels, size, size), linear output."""

    def __init__(
        self,
        size: int,
        w_dim: int = 512,
        channel_base: int = 32768,
        channel_max: int = 512,
        modulation: Modulation = "demod",
        upsample: Upsample = "bilinear",
        img_channels: int = 3,
    ) -> None:
        super().__init__()
        log = check_size(size)
        check_upsample(upsample)
        if modulation not in ("demod", "adain"):
            raise ValueError(f"unknown modulation {modulation!r}; choose one of demod, adain")
        self.size = size
        self.resolutions = [2**i for i in range(2, log + 1)]
        blocks = []
        for res in self.resolutions:
            in_ch = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            out_ch = channels_at(res, channel_base, channel_max)
            blocks.append(
                SynthesisBlock(in_ch, out_ch, w_dim, res, img_channels, modulation, upsample)
            )
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(
        self,
        ws: Tensor,
        noise_mode: NoiseMode = "random",
        resolution: int | None = None,
        alpha: float = 1.0,
    ) -> Tensor:
        """The image at `resolution` (default: size); alpha fades in that resolution's toRGB."""
        if ws.shape[1] != self.num_ws:
            raise ValueError(
                f"synthesis expects ws (B, {self.num_ws}, w_dim), got {tuple(ws.shape)}"
            )
        resolution = self.size if resolution is None else resolution
        if resolution not in self.resolutions:
            raise ValueError(f"resolution must be one of {self.resolutions}, got {resolution!r}")
        x, img, idx = None, None, 0
        for block in self.blocks:
            if block.resolution > resolution:
                break
            x, rgb = block(x, ws[:, idx : idx + block.num_conv + 1], noise_mode)
            idx += block.num_conv
            if img is None:
                img = rgb
            else:
                # Progressive growing: the newest resolution's contribution is faded in, so
                # alpha 0 is the lower resolution's image upsampled and alpha 1 the full path.
                fade = alpha if block.resolution == resolution else 1.0
                img = upsample2x(img) + fade * rgb
        return img  # (B, img_channels, resolution, resolution)


def mix_ws(ws: Tensor, ws2: Tensor, layer: int) -> Tensor:
    """Style mixing: ws[:, :layer] from the first w, ws[:, layer:] from the second."""
    out = ws.clone()
    out[:, layer:] = ws2[:, layer:]
    return out


def random_mix(
    ws: Tensor, ws2: Tensor, prob: float = 0.9, generator: torch.Generator | None = None
) -> Tensor:
    """Mixing regularization: with probability `prob`, switch to ws2 at a random layer in [1, num_ws)."""
    num_ws = ws.shape[1]
    if num_ws < 2 or torch.rand((), generator=generator).item() >= prob:
        return ws
    layer = int(torch.randint(1, num_ws, (), generator=generator))
    return mix_ws(ws, ws2, layer)


class StyleGenerator(nn.Module):
    """z (B, z_dim) -> image (B, img_channels, size, size): mapping, truncation, synthesis."""

    def __init__(
        self,
        size: int,
        z_dim: int = 512,
        w_dim: int = 512,
        n_mapping: int = 8,
        channel_base: int = 32768,
        channel_max: int = 512,
        modulation: Modulation = "demod",
        upsample: Upsample = "bilinear",
        img_channels: int = 3,
        mapping_lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.size, self.z_dim, self.w_dim = size, z_dim, w_dim
        self.mapping_net = MappingNetwork(z_dim, w_dim, n_mapping, mapping_lr_mul)
        self.synthesis_net = SynthesisNetwork(
            size, w_dim, channel_base, channel_max, modulation, upsample, img_channels
        )
        self.w_avg_beta = w_avg_beta
        # the running mean of w, the centre that truncation pulls towards
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @property
    def num_ws(self) -> int:
        return self.synthesis_net.num_ws

    @torch.no_grad()
    def update_w_avg(self, w: Tensor, beta: float | None = None) -> None:
        """Move w_avg towards the batch mean of w (B, w_dim): w_avg += (1 - beta) * (mean - w_avg)."""
        beta = self.w_avg_beta if beta is None else beta
        self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - beta)

    def mapping(
        self,
        z: Tensor,
        truncation: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """ws (B, num_ws, w_dim); truncation psi pulls w towards w_avg (psi 0: the mean image)."""
        w = self.mapping_net(z)  # (B, w_dim)
        if update_w_avg:
            self.update_w_avg(w)
        ws = w[:, None].repeat(1, self.num_ws, 1)  # (B, num_ws, w_dim)
        if truncation != 1.0:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            w_avg = self.w_avg.to(ws.dtype)
            ws[:, :cut] = w_avg.lerp(ws[:, :cut], truncation)
        return ws

    def synthesis(
        self,
        ws: Tensor,
        noise_mode: NoiseMode = "random",
        resolution: int | None = None,
        alpha: float = 1.0,
    ) -> Tensor:
        """ws (B, num_ws, w_dim) -> image; `resolution` and `alpha` serve progressive growing."""
        return self.synthesis_net(ws, noise_mode, resolution, alpha)

    def forward(
        self,
        z: Tensor,
        truncation: float = 1.0,
        z2: Tensor | None = None,
        mix_layer: int | None = None,
        noise_mode: NoiseMode = "random",
        resolution: int | None = None,
        alpha: float = 1.0,
        mix_prob: float = 0.0,
        update_w_avg: bool = False,
        return_ws: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Images for z; with z2, ws[:, mix_layer:] come from z2 (style mixing).

        Without mix_layer, z2 is mixed in at a random layer with probability mix_prob (mixing
        regularization). return_ws: also the ws (B, num_ws, w_dim) the images came from.
        """
        ws = self.mapping(z, truncation, update_w_avg=update_w_avg)
        if z2 is not None:
            ws2 = self.mapping(z2, truncation)
            ws = (
                mix_ws(ws, ws2, mix_layer)
                if mix_layer is not None
                else random_mix(ws, ws2, mix_prob)
            )
        img = self.synthesis(ws, noise_mode, resolution, alpha)
        return (img, ws) if return_ws else img
