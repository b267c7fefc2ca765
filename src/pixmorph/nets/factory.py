"""Named generator and discriminator architectures, and the settings that choose them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import nn

from pixmorph.errors import ConfigError
from pixmorph.nets.blocks import Norm, init_weights
from pixmorph.nets.patchgan import PatchDiscriminator, PixelDiscriminator
from pixmorph.nets.resnet import ResNetGenerator
from pixmorph.nets.unet import UNet

GeneratorArch = Literal[
    "auto",
    "unet_16",
    "unet_32",
    "unet_64",
    "unet_128",
    "unet_256",
    "unet_512",
    "resnet_6blocks",
    "resnet_9blocks",
]
DiscriminatorArch = Literal["patch", "pixel"]


@dataclass
class GeneratorConfig:
    """Which generator: `auto` picks the U-Net depth that fits the crop size."""

    arch: GeneratorArch = "auto"
    ngf: int = 64
    norm: Norm = "batch"
    dropout: bool = True
    init_gain: float = 0.02


@dataclass
class DiscriminatorConfig:
    """PatchGAN with n_layers (3 = 70x70 patches) or the 1x1 pixel variant."""

    arch: DiscriminatorArch = "patch"
    ndf: int = 64
    n_layers: int = 3
    norm: Norm = "batch"
    init_gain: float = 0.02
    # spectral normalisation of every conv weight (Miyato et al. 2018); usually with norm=none
    spectral_norm: bool = False


def with_spectral_norm(net: nn.Module) -> nn.Module:
    """Divide every conv weight by its largest singular value (one power iteration a call)."""
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d):
            nn.utils.parametrizations.spectral_norm(module)
    return net


def size_multiple(arch: str) -> int:
    """Input sizes a generator accepts are multiples of this."""
    if arch.startswith("unet_"):
        return int(arch.split("_")[1])
    return 4


def fit_generator(arch: str, crop_size: int, option: str = "model.generator.arch") -> str:
    """Resolve `auto` for a crop size and check that a named generator can take it."""
    if arch == "auto":
        k = 0
        while k < 8 and crop_size % 2 ** (k + 1) == 0:
            k += 1
        if k < 4:
            raise ConfigError(
                f"{option}=auto: the crop size {crop_size} must be a multiple of 16 for a U-Net; "
                "use --size 32, 64, 128 or 256, or a resnet generator"
            )
        return f"unet_{2**k}"
    m = size_multiple(arch)
    if crop_size % m:
        raise ConfigError(
            f"{option}={arch} cannot take the crop size {crop_size}: sizes must be multiples of {m}"
            + (
                f"; use unet_{2 ** int(math.log2(crop_size & -crop_size))} or set --size"
                if arch.startswith("unet_") and crop_size & -crop_size >= 16
                else ""
            )
        )
    return arch


def build_generator(spec: GeneratorConfig, in_ch: int, out_ch: int) -> nn.Module:
    """Build and initialise the generator a (resolved) spec names."""
    arch = spec.arch
    if arch.startswith("unet_"):
        depth = int(math.log2(size_multiple(arch)))
        net: nn.Module = UNet(in_ch, out_ch, spec.ngf, depth, spec.norm, spec.dropout)
    elif arch in ("resnet_6blocks", "resnet_9blocks"):
        n_blocks = 6 if arch == "resnet_6blocks" else 9
        net = ResNetGenerator(in_ch, out_ch, spec.ngf, n_blocks, spec.norm, spec.dropout)
    else:
        raise ConfigError(f"generator {arch!r} must be resolved before building (auto?)")
    return init_weights(net, spec.init_gain)


def build_discriminator(spec: DiscriminatorConfig, in_ch: int) -> nn.Module:
    """Build and initialise the discriminator a spec names."""
    if spec.arch == "patch":
        net: nn.Module = PatchDiscriminator(in_ch, spec.ndf, spec.n_layers, spec.norm)
    else:
        net = PixelDiscriminator(in_ch, spec.ndf, spec.norm)
    net = init_weights(net, spec.init_gain)
    return with_spectral_norm(net) if spec.spectral_norm else net
