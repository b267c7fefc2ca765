"""Layers of the style-based generator and its discriminator (Karras et al. 2019, 2020).

Every weight uses the equalized learning rate: stored as N(0, 1) / lr_mul and multiplied at run
time by lr_mul / sqrt(fan_in) (He's constant), so Adam sees every layer on the same scale.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Upsample = Literal["bilinear", "transposed"]
UPSAMPLES: tuple[str, ...] = ("bilinear", "transposed")
NoiseMode = Literal["random", "const", "none"]
NOISE_MODES: tuple[str, ...] = ("random", "const", "none")

LRELU_GAIN = math.sqrt(2.0)  # keeps the second moment of a LeakyReLU(0.2) output near its input's


def lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) scaled by sqrt(2), the activation of every StyleGAN layer."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def check_upsample(upsample: str | None) -> None:
    """Raise a ValueError naming the choices if `upsample` is not one of them."""
    if upsample is not None and upsample not in UPSAMPLES:
        raise ValueError(f"unknown upsample {upsample!r}; choose one of {', '.join(UPSAMPLES)}")


def fir_kernel(device: torch.device | None = None) -> Tensor:
    """The separable [1, 3, 3, 1] low-pass filter as a (4, 4) kernel summing to 1."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], device=device)
    k = k[:, None] * k[None, :]
    return k / k.sum()


def blur(x: Tensor, pad: tuple[int, int], gain: float = 1.0) -> Tensor:
    """Depthwise [1, 3, 3, 1] filter with (before, after) zero padding: anti-aliases resampling."""
    c = x.shape[1]
    k = (fir_kernel(x.device) * gain).to(x.dtype).expand(c, 1, 4, 4)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, k, groups=c)  # (B, C, H + sum(pad) - 3, W + sum(pad) - 3)


def upsample2x(x: Tensor) -> Tensor:
    """Bilinear x2 upsampling (align_corners=False): the [1, 3, 3, 1] filter at the borders too."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """A dense layer with the equalized learning rate; optional fused LeakyReLU."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        # the bias is stored divided by lr_mul too, so its effective step shrinks by lr_mul
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        out = F.linear(x, self.weight * self.scale, bias)  # (B, out_features)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    """A convolution with the equalized learning rate."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        lr_mul: float = 1.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = lr_mul / math.sqrt(in_ch * kernel * kernel)
        self.lr_mul = lr_mul
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.conv2d(x, self.weight * self.scale, bias, self.stride, self.padding)


def styled_conv(x: Tensor, weight: Tensor, groups: int, upsample: str | None) -> Tensor:
    """Grouped conv of x (1, G*in, H, W) with weight (G*out, in, k, k), optionally at 2x size."""
    k = weight.shape[-1]
    if upsample == "transposed":
        # A stride-2 transposed conv (2H + k - 2 px) followed by a [1, 3, 3, 1] blur back to 2H;
        # the blur's gain of 4 restores the energy lost to the zeros the stride inserts.
        out_ch = weight.shape[0] // groups
        w = weight.reshape(groups, out_ch, -1, k, k).transpose(1, 2)  # (G, in, out, k, k)
        w = w.reshape(-1, out_ch, k, k)  # (G*in, out, k, k)
        x = F.conv_transpose2d(x, w, stride=2, groups=groups)  # (1, G*out, 2H + k - 2, ..)
        p = 3 - k  # (filter taps - factor) - (k - 1): pads that bring 2H + k - 2 back to 2H
        return blur(x, ((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
    if upsample == "bilinear":
        x = upsample2x(x)
    return F.conv2d(x, weight, padding=k // 2, groups=groups)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's conv: the style scales the weight per input channel, then (optionally) demodulates."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        w_dim: int,
        demodulate: bool = True,
        upsample: Upsample | None = None,
    ) -> None:
        super().__init__()
        check_upsample(upsample)
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # "A": styles start at 1
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate = demodulate
        self.upsample = upsample
        self.in_ch, self.out_ch = in_ch, out_ch

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        b, _, h, wd = x.shape
        style = self.affine(w)  # (B, in)
        weight = (
            self.weight[None] * self.scale * style[:, None, :, None, None]
        )  # (B, out, in, k, k)
        if self.demodulate:
            # Scale each output channel so that unit-variance inputs give unit-variance outputs
            # whatever the style: the statistics AdaIN normalized, without its droplet artifacts.
            demod = torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)  # (B, out)
            weight = weight * demod[:, :, None, None, None]
        # One grouped conv runs every sample with its own weights (group = sample).
        x = x.reshape(1, b * self.in_ch, h, wd)
        weight = weight.reshape(b * self.out_ch, self.in_ch, *weight.shape[3:])
        out = styled_conv(x, weight, b, self.upsample)
        return out.reshape(b, self.out_ch, *out.shape[2:])  # (B, out, H', W')


class AdaINConv(nn.Module):
    """The original StyleGAN's modulation: AdaIN (instance norm, then style scale and shift), then conv.

    AdaIN is applied to the conv's input, the rearrangement of StyleGAN2's Fig. 2: it equals the
    original's AdaIN after the previous layer and lets both modulations share one layer layout.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        w_dim: int,
        upsample: Upsample | None = None,
    ) -> None:
        super().__init__()
        check_upsample(upsample)
        self.affine_scale = EqualLinear(w_dim, in_ch, bias_init=1.0)  # "A", the y_s half
        self.affine_shift = EqualLinear(w_dim, in_ch, bias_init=0.0)  # "A", the y_b half
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.upsample = upsample

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.upsample == "bilinear":
            x = upsample2x(x)
        x = F.instance_norm(x, eps=1e-8)  # (B, in, H, W), per-sample per-channel unit variance
        x = x * self.affine_scale(w)[:, :, None, None] + self.affine_shift(w)[:, :, None, None]
        up = "transposed" if self.upsample == "transposed" else None
        return styled_conv(x, self.weight * self.scale, 1, up)  # (B, out, H', W')


class NoiseInjection(nn.Module):
    """Adds per-pixel noise times a learned per-channel strength "B" (starts at 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + self.strength * noise  # noise (B or 1, 1, H, W) broadcasts over channels


class StyledConv(nn.Module):
    """One synthesis layer: modulated 3x3 conv, noise, bias, LeakyReLU."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        resolution: int,
        modulation: Literal["demod", "adain"] = "demod",
        upsample: Upsample | None = None,
    ) -> None:
        super().__init__()
        if modulation == "demod":
            self.conv: nn.Module = ModulatedConv2d(in_ch, out_ch, 3, w_dim, True, upsample)
        elif modulation == "adain":
            self.conv = AdaINConv(in_ch, out_ch, 3, w_dim, upsample)
        else:
            raise ValueError(f"unknown modulation {modulation!r}; choose one of demod, adain")
        self.noise = NoiseInjection(out_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.resolution = resolution
        # one fixed noise image per layer for noise_mode="const" (saved with the weights)
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: Tensor, w: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        x = self.conv(x, w)  # (B, out, R, R)
        if noise_mode == "random":
            x = self.noise(x, torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device))
        elif noise_mode == "const":
            x = self.noise(x, self.noise_const.to(x.dtype))
        elif noise_mode != "none":
            raise ValueError(
                f"unknown noise_mode {noise_mode!r}; choose one of random, const, none"
            )
        return lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """A modulated 1x1 conv (no demodulation) from features to image channels, plus a bias."""

    def __init__(self, in_ch: int, w_dim: int, img_channels: int = 3) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]  # (B, img_channels, H, W)
