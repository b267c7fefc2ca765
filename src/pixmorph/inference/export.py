"""Export a generator to ONNX or TorchScript, and translate with such a file.

An exported file describes itself: the run's config, direction, channels, size multiple, scale
and step travel inside it (ONNX metadata, a TorchScript extra file), so `load_exported` rebuilds
a Translator that pads, batches and crops exactly as the PyTorch one does.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pixmorph.config import to_dict
from pixmorph.device import pick_device
from pixmorph.errors import CheckpointError, ConfigError
from pixmorph.inference.styles import FixedStyle
from pixmorph.inference.translator import Translator
from pixmorph.methods.base import Generator
from pixmorph.methods.settings import config_from_dict
from pixmorph.speed.plan import strip_inference_speedups

log = logging.getLogger(__name__)

MARKER = "pixmorph-generator"
ONNX_SUFFIX = ".onnx"
TORCHSCRIPT_SUFFIX = ".torchscript"
ONNX_OPSET = 17
ONNX_HINT = "ONNX needs the optional packages: pip install 'pixmorph[onnx]'"


def describe_translator(translator: Translator) -> dict[str, Any]:
    """What a Translator needs besides the network, as plain JSON-able values."""
    g = translator.generator
    return {
        "format": MARKER,
        "config": to_dict(translator.config),
        "direction": translator.direction,
        "in_channels": g.in_channels,
        "out_channels": g.out_channels,
        "size_multiple": g.size_multiple,
        "scale": g.scale,
        "step": translator.step,
        # a multimodal generator is exported with its translator's style code built in
        "style": translator.style_codes(1)[0].tolist() if g.style_dim else None,
    }


def exportable(translator: Translator) -> nn.Module:
    """A portable copy taking only x: a multimodal one with the translator's style built in."""
    net = portable_copy(translator.generator.module)
    if not translator.generator.style_dim:
        return net
    # the translator's style code: the zero code (the prior's mean) unless a style was set
    return FixedStyle(net, translator.style_codes(1)[0].cpu()).eval()


def portable_copy(module: nn.Module) -> nn.Module:
    """An fp32, NCHW, eval-mode CPU copy of a network, free of pixmorph's speed wrappers."""
    if any(p.dtype != torch.float32 for p in module.parameters()):
        raise ConfigError(
            "the generator was loaded with bf16/fp16 weights; load it with precision='fp32' "
            "to export it without rounding its weights"
        )
    net = strip_inference_speedups(copy.deepcopy(module))
    return net.float().to("cpu", memory_format=torch.contiguous_format).eval()


def example_input(translator: Translator, size: int = 64) -> Tensor:
    """A (1, C, H, W) input the generator accepts, near `size` pixels on a side."""
    m = translator.generator.size_multiple
    side = m * max(1, math.ceil(size / m))
    return torch.rand(1, translator.in_channels, side, side) * 2 - 1


def export_onnx(translator: Translator, path: str | Path) -> Path:
    """Write the generator as ONNX with a dynamic batch, height and width."""
    try:
        import onnx
    except ImportError as e:
        raise ConfigError(ONNX_HINT) from e
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = exportable(translator)
    with warnings.catch_warnings():
        # the TorchScript-based exporter: fast, needs only `onnx`, and keeps H and W dynamic
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example_input(translator),),
            str(p),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
    model = onnx.load(str(p))
    entry = model.metadata_props.add()
    entry.key, entry.value = MARKER, json.dumps(describe_translator(translator))
    onnx.save(model, str(p))
    return p


def export_torchscript(translator: Translator, path: str | Path) -> Path:
    """Write the generator as a traced TorchScript module (loadable without pixmorph)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = exportable(translator)
    extra = {f"{MARKER}.json": json.dumps(describe_translator(translator))}
    with torch.no_grad(), warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated; the format is still what many runtimes load
        warnings.simplefilter("ignore", DeprecationWarning)
        # InstanceNorm2d checks its channel count in Python; that count is fixed, so the trace
        # holds for every input size
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(net, example_input(translator), check_trace=False)
        torch.jit.save(traced, str(p), _extra_files=extra)
    return p


EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}
SUFFIXES = {"onnx": ONNX_SUFFIX, "torchscript": TORCHSCRIPT_SUFFIX}


class OnnxModule(nn.Module):
    """Runs an ONNX generator in onnxruntime; takes and returns torch tensors (B, C, H, W)."""

    def __init__(self, path: str | Path, device: torch.device, threads: int = 0) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ConfigError(ONNX_HINT) from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


def read_description(meta: str | None, path: Path) -> dict[str, Any]:
    """Parse and check the description an exported file carries."""
    if not meta:
        raise CheckpointError(f"{path} was not exported by pixmorph (no {MARKER} metadata)")
    try:
        desc = json.loads(meta)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: its pixmorph metadata is not valid JSON ({e})") from e
    if desc.get("format") != MARKER:
        raise CheckpointError(f"{path}: unknown metadata format {desc.get('format')!r}")
    return desc


def _translator(
    module: nn.Module, desc: dict[str, Any], direction: str | None, device: torch.device
) -> Translator:
    if direction not in (None, desc["direction"]) and desc["direction"] is not None:
        raise ConfigError(
            f"this file translates {desc['direction']}; export the {direction} generator instead"
        )
    gen = Generator(
        module, desc["in_channels"], desc["out_channels"], desc["size_multiple"], desc["scale"]
    )
    cfg = config_from_dict(desc["config"])
    return Translator(gen, cfg, desc["direction"], device, "fp32", int(desc["step"]))


def load_onnx(
    path: str | Path, direction: str | None = None, device: str | torch.device = "cpu"
) -> Translator:
    """A Translator running an exported .onnx file in onnxruntime."""
    try:
        import onnx
    except ImportError as e:
        raise ConfigError(ONNX_HINT) from e
    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise CheckpointError(f"{p} could not be read as ONNX ({type(e).__name__}: {e})") from e
    meta = {m.key: m.value for m in model.metadata_props}.get(MARKER)
    desc = read_description(meta, p)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return _translator(OnnxModule(p, dev), desc, direction, dev)


def load_torchscript(
    path: str | Path, direction: str | None = None, device: str | torch.device = "cpu"
) -> Translator:
    """A Translator running an exported TorchScript file."""
    p = Path(path)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    extra = {f"{MARKER}.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see export_torchscript
            module = torch.jit.load(str(p), map_location=dev, _extra_files=extra)
    except Exception as e:
        raise CheckpointError(f"{p} could not be read as TorchScript ({e})") from e
    desc = read_description(extra[f"{MARKER}.json"], p)
    return _translator(module.eval(), desc, direction, dev)


def is_exported(path: str | Path) -> bool:
    """Whether a path names an exported file (by its suffix) rather than a checkpoint."""
    return Path(path).suffix in (ONNX_SUFFIX, TORCHSCRIPT_SUFFIX)


def load_exported(
    path: str | Path, direction: str | None = None, device: str | torch.device = "cpu"
) -> Translator:
    """Load an exported .onnx or .torchscript file as a Translator."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"exported model {p} does not exist")
    if p.suffix == ONNX_SUFFIX:
        return load_onnx(p, direction, device)
    return load_torchscript(p, direction, device)


def onnx_engine(translator: Translator, device: str | torch.device | None = None) -> Translator:
    """The same translator running in onnxruntime (through a temporary ONNX file).

    `device` picks onnxruntime's provider (CUDA when given a CUDA device and installed with
    it); None keeps the translator's device.
    """
    if isinstance(translator.generator.module, OnnxModule):
        return translator
    with tempfile.TemporaryDirectory(prefix="pixmorph-onnx-") as folder:
        path = export_onnx(translator, Path(folder) / f"generator{ONNX_SUFFIX}")
        # the session holds the whole model once built, so the file can go
        return load_onnx(path, translator.direction, device or translator.device)
