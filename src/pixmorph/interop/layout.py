"""Key layout of the reference pix2pix/CycleGAN implementation, mapped to pixmorph's own nets.

pixmorph's nets keep their own structure (an iterative U-Net, a ResNet in named stages); the
published weights of the reference implementation use nested Sequentials instead. A table maps
each parametrised pixmorph module path to its reference path; tensor names (weight, bias,
running_mean, ...) stay the same, so one table serves every norm.

U-Net equivalence: the reference's inner blocks start with an in-place LeakyReLU, which also
rewrites the skip tensor before it is concatenated; the ReLU that opens every decoder step then
gives relu(leaky(x)) == relu(x). pixmorph skips the pre-activation output and applies the same
ReLU, so with mapped weights both compute the same function.
"""

from __future__ import annotations

from torch import Tensor, nn

from pixmorph.nets.patchgan import PatchDiscriminator
from pixmorph.nets.resnet import ResNetGenerator
from pixmorph.nets.unet import UNet

# a residual block of the reference: [pad, conv, norm, relu, (dropout), pad, conv, norm]
RESNET_FIRST = 10  # model.10 is the first residual block (after the stem and two down convs)


def unet_level_path(level: int) -> str:
    """Module path of U-Net nesting level `level` (0 is the outermost block)."""
    if level == 0:
        return "model.model"
    return "model.model.1" + ".model.3" * (level - 1) + ".model"


def unet_table(depth: int) -> dict[str, str]:
    """pixmorph UNet module path -> reference path, for a U-Net of `depth` levels."""
    table = {"downs.0": "model.model.0", "ups.0.1": "model.model.3"}
    innermost = depth - 1
    for k in range(1, depth):
        p = unet_level_path(k)
        table[f"downs.{k}.1"] = f"{p}.1"  # [0 leaky, 1 conv, 2 norm, 3 inner block, ...]
        if k == innermost:  # [0 leaky, 1 conv, 2 relu, 3 convT, 4 norm]
            table[f"ups.{k}.1"] = f"{p}.3"
            table[f"ups.{k}.2"] = f"{p}.4"
        else:  # [..., 4 relu, 5 convT, 6 norm, (7 dropout)]
            table[f"downs.{k}.2"] = f"{p}.2"
            table[f"ups.{k}.1"] = f"{p}.5"
            table[f"ups.{k}.2"] = f"{p}.6"
    return table


def resnet_table(n_blocks: int, dropout: bool) -> dict[str, str]:
    """pixmorph ResNetGenerator module path -> reference path."""
    table = {
        "stem.1": "model.1",
        "stem.2": "model.2",
        "down.0": "model.4",
        "down.1": "model.5",
        "down.3": "model.7",
        "down.4": "model.8",
    }
    # pixmorph's block body has the reference's conv_block order, dropout included
    second = 6 if dropout else 5
    for i in range(n_blocks):
        for j in (1, 2, second, second + 1):
            table[f"blocks.{i}.body.{j}"] = f"model.{RESNET_FIRST + i}.conv_block.{j}"
    up = RESNET_FIRST + n_blocks  # [convT, norm, relu] twice, then [pad, conv, tanh]
    table |= {
        "up.0": f"model.{up}",
        "up.1": f"model.{up + 1}",
        "up.3": f"model.{up + 3}",
        "up.4": f"model.{up + 4}",
        "head.1": f"model.{up + 7}",
    }
    return table


def patch_table(n_layers: int) -> dict[str, str]:
    """PatchDiscriminator module path -> reference path: the two Sequentials agree index by index."""
    return {f"model.{i}": f"model.{i}" for i in range(3 * n_layers + 3)}


def module_table(net: nn.Module) -> dict[str, str]:
    """The table for a built pixmorph net; a TypeError for nets without a reference layout."""
    if isinstance(net, UNet):
        return unet_table(net.depth)
    if isinstance(net, ResNetGenerator):
        body = net.blocks[0].body if len(net.blocks) else None
        dropout = body is not None and any(isinstance(m, nn.Dropout) for m in body)
        return resnet_table(len(net.blocks), dropout)
    if isinstance(net, PatchDiscriminator):
        convs = [m for m in net.model if isinstance(m, nn.Conv2d)]
        return patch_table(len(convs) - 2)
    raise TypeError(
        f"{type(net).__name__} has no counterpart in the reference pix2pix/CycleGAN layout "
        "(only UNet, ResNetGenerator and PatchDiscriminator do)"
    )


def _split(key: str) -> tuple[str, str]:
    module, _, tensor = key.rpartition(".")
    return module, tensor


def to_reference(state: dict[str, Tensor], table: dict[str, str]) -> dict[str, Tensor]:
    """Rename a pixmorph state dict into the reference layout."""
    out = {}
    for key, value in state.items():
        module, tensor = _split(key)
        if module not in table:
            raise KeyError(f"{key} has no place in the reference layout")
        out[f"{table[module]}.{tensor}"] = value
    return out


def from_reference(state: dict[str, Tensor], table: dict[str, str]) -> dict[str, Tensor]:
    """Rename a reference-layout state dict into pixmorph's; unknown keys keep their names."""
    inverse = {ref: own for own, ref in table.items()}
    out = {}
    for key, value in state.items():
        module, tensor = _split(key)
        # an unknown key passes through unchanged, so a strict load can name it
        out[f"{inverse[module]}.{tensor}" if module in inverse else key] = value
    return out
