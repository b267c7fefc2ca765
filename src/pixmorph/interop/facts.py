"""Read a reference-layout generator file's architecture settings off its keys and shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pixmorph.errors import CheckpointError
from pixmorph.interop.layout import RESNET_FIRST, unet_level_path

Style = Literal["flags", "config"]  # how to spell a setting: CLI flags, or train overrides
RESNET_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")
UNET_NAMES = {2**d: f"unet_{2**d}" for d in range(4, 10)}  # the U-Net sizes pixmorph names
RESNET_NAMES = {6: "resnet_6blocks", 9: "resnet_9blocks"}


@dataclass
class LayoutFacts:
    """The settings a generator file shows; None where its tensors cannot tell."""

    arch: str
    ngf: int
    in_channels: int
    out_channels: int
    norm: str | None
    dropout: bool | None
    evidence: dict[str, str] = field(default_factory=dict)  # setting -> what shows it

    def settings(self) -> dict[str, Any]:
        """The known settings, by name."""
        names = ("arch", "ngf", "in_channels", "out_channels", "norm", "dropout")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def spell(name: str, value: Any, style: Style) -> str:
    """How a user sets `name` to `value`: a CLI flag or a `key=value` override."""
    if style == "flags":
        if name == "dropout":
            return "leave out --no-dropout" if value else "--no-dropout"
        if name in ("arch", "norm"):
            return f"--{name} {value}"
        return f"{name.replace('_', ' ')} {value}"  # ngf and channels come from the file itself
    key = f"data.{name}" if name.endswith("channels") else f"model.generator.{name}"
    return f"{key}={str(value).lower() if isinstance(value, bool) else value}"


def describe(facts: LayoutFacts, style: Style) -> str:
    """The settings of a layout as the user would spell them."""
    settings = facts.settings()
    if style == "config":
        return " ".join(spell(k, v, style) for k, v in settings.items())
    flags = [spell(k, settings[k], style) for k in ("arch", "norm") if k in settings]
    if settings.get("dropout") is False:
        flags.append(spell("dropout", False, style))
    return (
        " ".join(flags)
        + f" (ngf {facts.ngf}, {facts.in_channels} -> {facts.out_channels} channels)"
    )


def read_facts(state: dict[str, Any], source: str = "the file") -> LayoutFacts:
    """Architecture settings from a reference-layout generator state dict (tensors or shapes)."""
    if "model.model.0.weight" in state:
        return _unet_facts(state, source)
    if any(RESNET_BLOCK.match(k) for k in state):
        return _resnet_facts(state, source)
    shown = f"keys {', '.join(list(state)[:3])}" if state else "no keys"
    if "model.0.weight" in state:
        raise CheckpointError(
            f"{source} looks like a PatchGAN discriminator ({shown}); pixmorph reads "
            "generator files (latest_net_G.pth, latest_net_G_A.pth, ...)"
        )
    raise CheckpointError(
        f"{source} is not a pix2pix/CycleGAN generator in the reference layout ({shown}); "
        "expected model.model.* (U-Net) or model.N.conv_block.* (ResNet) keys"
    )


def _norm(state: dict[str, Any], conv: str, evidence: dict[str, str]) -> str | None:
    # batch norm layers carry an affine weight (1-D); affine-free instance norm carries nothing
    # and leaves the convs their biases
    if any(k.endswith(".weight") and len(_shape(v)) == 1 for k, v in state.items()):
        evidence["norm"] = "this file has norm layers with weight and running_mean keys"
        return "batch"
    if f"{conv}.bias" in state:
        evidence["norm"] = "this file's convs have biases and its norm layers no weights"
        return "instance"
    return None


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(v.shape) if hasattr(v, "shape") else tuple(v)


def _unet_facts(state: dict[str, Any], source: str) -> LayoutFacts:
    depth = 1
    while any(k.startswith(unet_level_path(depth) + ".") for k in state):
        depth += 1
    size = 2**depth
    if size not in UNET_NAMES:
        raise CheckpointError(
            f"{source} holds a U-Net with {depth} levels (unet_{size}); pixmorph builds "
            f"{', '.join(UNET_NAMES.values())}"
        )
    first = _shape(state["model.model.0.weight"])  # (ngf, in, 4, 4)
    last = state.get("model.model.3.weight")  # ConvTranspose: (2 ngf, out, 4, 4)
    if last is None:
        raise CheckpointError(f"{source} lacks model.model.3.weight, the U-Net's output layer")
    evidence = {
        "arch": f"the file nests {depth} U-Net levels",
        "dropout": "a U-Net's dropout layers have no weights, so the file cannot tell",
    }
    return LayoutFacts(
        UNET_NAMES[size],
        first[0],
        first[1],
        _shape(last)[1],
        _norm(state, "model.model.0", evidence),
        None,
        evidence,
    )


def _resnet_facts(state: dict[str, Any], source: str) -> LayoutFacts:
    blocks = sorted({int(m.group(1)) for k in state if (m := RESNET_BLOCK.match(k))})
    n = len(blocks)
    if blocks != list(range(RESNET_FIRST, RESNET_FIRST + n)):
        raise CheckpointError(
            f"{source}: residual blocks at model.{blocks[0]}..model.{blocks[-1]} are not "
            f"the contiguous run from model.{RESNET_FIRST} of the reference layout"
        )
    if n not in RESNET_NAMES:
        raise CheckpointError(
            f"{source} has {n} residual blocks; pixmorph builds resnet_6blocks and resnet_9blocks"
        )
    first, last = state.get("model.1.weight"), state.get(f"model.{RESNET_FIRST + n + 7}.weight")
    if first is None or last is None:
        raise CheckpointError(
            f"{source} lacks model.1.weight or model.{RESNET_FIRST + n + 7}.weight, "
            "the ResNet's first and last convs"
        )
    evidence = {"arch": f"the file has {n} residual blocks, model.10 to model.{9 + n}"}
    block = f"model.{RESNET_FIRST}.conv_block"
    # the second conv of a block follows [pad, conv, norm, relu, (dropout), pad]
    dropout = None
    for index, has_dropout in ((6, True), (5, False)):
        w = state.get(f"{block}.{index}.weight")
        if w is not None and len(_shape(w)) == 4:
            dropout = has_dropout
            evidence["dropout"] = (
                f"the second conv of each residual block is at conv_block.{index}"
                + (", after a dropout layer" if has_dropout else "")
            )
            break
    return LayoutFacts(
        RESNET_NAMES[n],
        _shape(first)[0],
        _shape(first)[1],
        _shape(last)[0],
        _norm(state, "model.1", evidence),
        dropout,
        evidence,
    )


def hints(found: LayoutFacts, wanted: LayoutFacts, style: Style) -> list[str]:
    """Sentences naming the settings that probably fit a file, where they differ from `wanted`."""
    out = []
    for name, value in found.settings().items():
        if getattr(wanted, name) not in (None, value):
            why = found.evidence.get(name, f"the file's shapes give {name.replace('_', ' ')}")
            verb = "it was trained with" if name in ("norm", "dropout") else "use"
            fix = spell(name, value, style)
            if name == "dropout":
                fix = f"{'dropout' if value else 'no dropout'} ({fix})"
            elif name == "norm":
                fix = f"{value} norm ({fix})"
            out.append(f"{why}: {verb} {fix}")
    return out
