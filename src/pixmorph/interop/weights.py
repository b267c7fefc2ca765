"""Published pix2pix/CycleGAN generator weights: read, check strictly, convert to and from pixmorph.

Those files are plain state dicts in the reference implementation's key layout
(nets/reference_layout.py). Loading is strict: every key and shape must fit the architecture,
and when they do not, the error names the settings the file's own tensors point to.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pixmorph.checkpoint import (
    FORMAT,
    check_format,
    inference_weights,
    load_file,
    make_payload,
    resolve_path,
)
from pixmorph.config import load_size_for, to_dict
from pixmorph.errors import CheckpointError
from pixmorph.interop.facts import LayoutFacts, Style, describe, hints, read_facts
from pixmorph.interop.layout import from_reference, module_table, to_reference
from pixmorph.methods.registry import get_method
from pixmorph.methods.settings import build_config, config_from_dict
from pixmorph.nets.factory import GeneratorConfig, size_multiple

log = logging.getLogger(__name__)

DATA_PARALLEL_PREFIX = "module."
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_file(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Load a .pth/.pt (weights_only) or .safetensors file; a folder means its latest checkpoint."""
    p = resolve_path(path)
    if p.suffix != ".safetensors":
        return p, load_file(p)
    from safetensors.torch import load_file as load_safetensors

    try:
        return p, load_safetensors(p)
    except Exception as e:  # header or size errors: the file is unusable either way
        raise CheckpointError(f"{p} is not a readable .safetensors file ({e})") from e


def plain_state(obj: dict[str, Any], source: str) -> dict[str, Tensor]:
    """A state dict of tensors, without the `module.` prefix DataParallel adds when saving."""
    odd = next((k for k, v in obj.items() if not isinstance(v, Tensor)), None)
    if odd is not None:
        raise CheckpointError(
            f"{source} is neither a pixmorph checkpoint nor a plain state dict of tensors "
            f"({odd!r} holds a {type(obj[odd]).__name__})"
        )
    if obj and all(k.startswith(DATA_PARALLEL_PREFIX) for k in obj):
        log.info("%s: stripped the %r prefix DataParallel adds to saved keys", source, "module.")
        return {k[len(DATA_PARALLEL_PREFIX) :]: v for k, v in obj.items()}
    return dict(obj)


def drop_legacy_stats(
    state: dict[str, Tensor], facts: LayoutFacts, source: str
) -> dict[str, Tensor]:
    """Drop running statistics an instance-norm file carries (written by PyTorch before 0.4)."""
    if facts.norm != "instance":
        return state
    kept = {k: v for k, v in state.items() if k.rpartition(".")[2] not in RUNNING_STATS}
    if len(kept) < len(state):
        log.info(
            "%s: dropped %d running-statistics tensors of instance-norm layers "
            "(old PyTorch wrote them; affine-free instance norm never uses them)",
            source,
            len(state) - len(kept),
        )
    return kept


def net_facts(net: nn.Module) -> LayoutFacts:
    """The settings of a built pixmorph generator, in the terms read_facts uses for files."""
    facts = read_facts(to_reference(net.state_dict(), module_table(net)), type(net).__name__)
    kinds = {type(m) for m in net.modules()}
    # instance norm and no norm have the same tensors; the modules tell them apart
    facts.norm = (
        "batch" if nn.BatchNorm2d in kinds else "instance" if nn.InstanceNorm2d in kinds else "none"
    )
    facts.dropout = nn.Dropout in kinds
    facts.evidence |= {
        "norm": f"its generator uses {facts.norm} norm",
        "dropout": f"its generator has {'' if facts.dropout else 'no '}dropout",
    }
    return facts


def check_layout(
    state: dict[str, Tensor], net: nn.Module, found: LayoutFacts, source: str, style: Style
) -> dict[str, Tensor]:
    """Check a reference-layout state dict against `net` key by key; return it in pixmorph's layout."""
    table = module_table(net)
    expected = {k: tuple(v.shape) for k, v in to_reference(net.state_dict(), table).items()}
    # batch-norm files from PyTorch before 0.4.1 have no step counters; eval never reads them
    absent = [k for k in expected if k.endswith(".num_batches_tracked") and k not in state]
    missing = [k for k in expected if k not in state and k not in absent]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    wanted = net_facts(net)
    differ = [n for n, v in found.settings().items() if getattr(wanted, n) not in (None, v)]
    if not (missing or unexpected or shapes or differ):
        if absent:
            log.info("%s: set %d absent num_batches_tracked counters to 0", source, len(absent))
        return from_reference(state | {k: torch.tensor(0) for k in absent}, table)
    problems = []
    if missing:
        problems.append(f"{len(missing)} key(s) missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shapes:
        k = shapes[0]
        problems.append(
            f"{len(shapes)} shape(s) differ (e.g. {k}: file {list(state[k].shape)}, "
            f"expected {list(expected[k])})"
        )
    if not problems:
        problems.append("its tensors fit, but its settings do not")
    advice = hints(found, wanted, style) or [
        "its keys match none of the settings pixmorph can read off a file; it may come "
        "from a modified implementation"
    ]
    raise CheckpointError(
        f"{source} does not fit a generator with {describe(wanted, style)}: {'; '.join(problems)}. "
        + " ".join(f"{a[0].upper()}{a[1:]}." for a in advice)
    )


def resolve_settings(
    facts: LayoutFacts,
    source: str,
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
) -> GeneratorConfig:
    """The generator settings to build: given flags win, then the file's facts, then defaults."""
    ev = facts.evidence
    told = []
    if arch is None:
        arch = facts.arch
        told.append(f"arch {arch} ({ev['arch']})")
    if norm is None:
        if facts.norm is None:
            raise CheckpointError(
                f"{source}: its convs have no biases and it has no norm weights, so the norm "
                "cannot be read off it; pass --norm batch or --norm instance"
            )
        norm = facts.norm
        told.append(f"norm {norm} ({ev['norm']})")
    if dropout is None:
        if facts.dropout is not None:
            dropout = facts.dropout
            told.append(f"dropout {'on' if dropout else 'off'} ({ev['dropout']})")
        else:
            dropout = arch.startswith("unet_")  # the pix2pix default, for U-Nets only
            log.info(
                "%s: dropout %s by default: %s; pass --no-dropout if it was trained without "
                "(dropout is inert when translating; it matters when fine-tuning)",
                source,
                "on" if dropout else "off",
                ev.get("dropout", "the file does not show it"),
            )
    log.info(
        "%s: %d -> %d channels, ngf %d%s",
        source,
        facts.in_channels,
        facts.out_channels,
        facts.ngf,
        "; inferred " + ", ".join(told) if told else "",
    )
    return GeneratorConfig(arch=arch, ngf=facts.ngf, norm=norm, dropout=dropout)  # type: ignore[arg-type]


def import_reference(
    state: dict[str, Tensor],
    source: str,
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
    direction: str = "AtoB",
) -> dict[str, Any]:
    """A pixmorph pix2pix checkpoint (step 0) holding a reference-layout generator."""
    facts = read_facts(state, source)
    state = drop_legacy_stats(state, facts, source)
    spec = resolve_settings(facts, source, arch, norm, dropout)
    m = size_multiple(spec.arch)
    crop = 256 if 256 % m == 0 else m  # any size the generator takes; translate pads to fit
    tree = {
        "method": "pix2pix",
        "data": {
            "direction": direction,
            "in_channels": facts.in_channels,
            "out_channels": facts.out_channels,
            "crop_size": crop,
            "load_size": load_size_for(crop),
        },
        "model": {"generator": asdict(spec)},
    }
    cfg = build_config(tree)
    method = get_method(cfg.method)(cfg, torch.device("cpu"), training=False)
    net = method.inference_generator().module
    net.load_state_dict(check_layout(state, net, facts, source, "flags"))
    payload = make_payload(to_dict(cfg), 0, method.state_dict())
    return payload | {"imported_from": Path(source).name}


def load_any(
    path: str | Path,
    direction: str | None = None,
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
) -> dict[str, Any]:
    """A pixmorph checkpoint, or one imported in memory from a reference state dict."""
    p, obj = read_file(path)
    if obj.get("format") == FORMAT:
        if (arch, norm, dropout) != (None, None, None):
            log.warning(
                "%s is a pixmorph checkpoint, which records its architecture; "
                "--arch, --norm and --no-dropout are ignored",
                p,
            )
        return check_format(obj, p)
    return import_reference(
        plain_state(obj, str(p)), str(p), arch, norm, dropout, direction or "AtoB"
    )


def _source_generator(ckpt: dict[str, Any], source: str) -> nn.Module:
    """The default generator of a pixmorph checkpoint, built on the CPU."""
    cfg = config_from_dict(ckpt["config"])
    method = get_method(cfg.method)(cfg, torch.device("cpu"), training=False)
    method.load_weights(inference_weights(ckpt), source=source)
    return method.inference_generator().module


def generator_weights(path: str | Path, net: nn.Module) -> dict[str, Tensor]:
    """Weights for `net` (pixmorph layout) from a reference state dict or a pixmorph checkpoint."""
    p, obj = read_file(path)
    source = str(p)
    if obj.get("format") == FORMAT:
        src = _source_generator(check_format(obj, p), source)
        try:
            state, facts = to_reference(src.state_dict(), module_table(src)), net_facts(src)
        except TypeError:  # a generator without a reference layout: compare it as it is
            return _check_same(src.state_dict(), net, source)
    else:
        state = plain_state(obj, source)
        facts = read_facts(state, source)
        state = drop_legacy_stats(state, facts, source)
    try:
        module_table(net)
    except TypeError as e:
        raise CheckpointError(f"{source} cannot initialise this run's generator: {e}") from None
    return check_layout(state, net, facts, source, "config")


def _check_same(state: dict[str, Tensor], net: nn.Module, source: str) -> dict[str, Tensor]:
    own = net.state_dict()
    bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
    bad += [k for k in state if k not in own]
    if bad:
        raise CheckpointError(
            f"the generator of {source} does not fit this run's ({len(bad)} keys or shapes "
            f"differ, e.g. {bad[0]}); give the run the same generator settings"
        )
    return state


def init_settings(path: str | Path) -> dict[str, Any]:
    """The generator settings (a config tree) a weights file shows; {} if it shows none."""
    p, obj = read_file(path)
    if obj.get("format") == FORMAT:
        src = _source_generator(check_format(obj, p), str(p))
        try:
            facts = net_facts(src)
        except TypeError:
            return {}
    else:
        facts = read_facts(plain_state(obj, str(p)), str(p))
    settings = facts.settings()
    generator = {k: v for k, v in settings.items() if not k.endswith("channels")}
    data = {k: v for k, v in settings.items() if k.endswith("channels")}
    log.info("%s shows %s", p, describe(facts, "config"))
    return {"data": data, "model": {"generator": generator}}


def reference_state_dict(net: nn.Module) -> dict[str, Tensor]:
    """A pixmorph net's weights renamed into the reference layout (CPU tensors)."""
    try:
        table = module_table(net)
    except TypeError as e:
        raise CheckpointError(str(e)) from None
    return {
        k: v.detach().cpu().contiguous() for k, v in to_reference(net.state_dict(), table).items()
    }
