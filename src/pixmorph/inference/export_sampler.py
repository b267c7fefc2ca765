"""Export a generator's sampler to ONNX or TorchScript: z (B, z_dim) and truncation (1,) in,
images (B, C, H, W) in [-1, 1] out (not clamped, as the PyTorch sampler returns them).

Both formats take a fixed batch (`batch`, default 1; `pixmorph export --batch`): the modulated
convs run as one grouped conv with a group per image, and tracing records that group count.

Truncation is an input: the exported graph computes w_avg + psi * (ws - w_avg) for every psi
(psi 1 leaves ws as they are), so one file serves every truncation. A sampler without a
mapping (not style-based) is exported at a fixed truncation and takes z alone.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pixmorph.config import to_dict
from pixmorph.errors import ConfigError
from pixmorph.inference.export import ONNX_HINT, ONNX_OPSET, ONNX_SUFFIX, TORCHSCRIPT_SUFFIX
from pixmorph.inference.generation import LoadedSampler

SAMPLER_MARKER = "pixmorph-sampler"


class TruncatedSampler(nn.Module):
    """z (B, z_dim), psi (1,) -> images: the truncation as a tensor, so it stays an input."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, z: Tensor, truncation: Tensor) -> Tensor:
        inner: Any = self.inner
        ws = inner.mapping(z)  # (B, num_ws, w_dim), untruncated
        w_avg = inner.w_avg.to(ws.dtype)
        return inner.synthesis(w_avg + truncation.reshape(1, 1, 1) * (ws - w_avg))


class FixedTruncation(nn.Module):
    """z -> images at one truncation (samplers without a mapping)."""

    def __init__(self, module: nn.Module, truncation: float) -> None:
        super().__init__()
        self.inner, self.truncation = module, truncation

    def forward(self, z: Tensor) -> Tensor:
        return self.inner(z, self.truncation)


def portable_sampler(
    m: LoadedSampler, truncation: float, batch: int = 1
) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """An fp32 CPU copy to export and an example input for it."""
    net = copy.deepcopy(m.module).float().cpu().eval()
    z = torch.randn(batch, m.sampler.latent_dim, generator=torch.Generator().manual_seed(0))
    if m.has_latents:
        return TruncatedSampler(net).eval(), (z, torch.tensor([truncation]))
    return FixedTruncation(net, truncation).eval(), (z,)


def describe_sampler(m: LoadedSampler, truncation: float, batch: int) -> dict[str, Any]:
    """What the exported file holds, as JSON-able values."""
    return {
        "format": SAMPLER_MARKER,
        "config": to_dict(m.config),
        "latent_dim": m.sampler.latent_dim,
        "out_channels": m.sampler.out_channels,
        "size": m.sampler.size,
        "truncation_input": m.has_latents,
        "truncation": truncation,
        "step": m.step,
        "batch": batch,
    }


def check_batch(batch: int) -> None:
    if batch < 1:
        raise ConfigError(f"--batch {batch}: an exported sampler takes at least 1 z at a time")


def export_sampler_onnx(
    m: LoadedSampler, path: str | Path, truncation: float = 1.0, batch: int = 1
) -> Path:
    """Write the sampler as ONNX for `batch` z at a time; inputs z (and truncation), out images."""
    try:
        import onnx
    except ImportError as e:
        raise ConfigError(ONNX_HINT) from e
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    check_batch(batch)
    net, example = portable_sampler(m, truncation, batch)
    names = ["z", "truncation"][: len(example)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            example,
            str(p),
            dynamo=False,
            input_names=names,
            output_names=["images"],
            opset_version=ONNX_OPSET,
        )
    model = onnx.load(str(p))
    entry = model.metadata_props.add()
    entry.key, entry.value = SAMPLER_MARKER, json.dumps(describe_sampler(m, truncation, batch))
    onnx.save(model, str(p))
    return p


def export_sampler_torchscript(
    m: LoadedSampler, path: str | Path, truncation: float = 1.0, batch: int = 1
) -> Path:
    """Write the sampler as a traced TorchScript module (loadable without pixmorph)."""
    check_batch(batch)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net, example = portable_sampler(m, truncation, batch)
    extra = {f"{SAMPLER_MARKER}.json": json.dumps(describe_sampler(m, truncation, batch))}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see export.export_torchscript
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(net, example, check_trace=False)
        torch.jit.save(traced, str(p), _extra_files=extra)
    return p


SAMPLER_EXPORTERS = {"onnx": export_sampler_onnx, "torchscript": export_sampler_torchscript}
SAMPLER_SUFFIXES = {"onnx": ONNX_SUFFIX, "torchscript": TORCHSCRIPT_SUFFIX}
