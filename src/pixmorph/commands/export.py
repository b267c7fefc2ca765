"""`pixmorph export`: write a trained generator in a format other tools read."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixmorph.checkpoint import save_atomic
from pixmorph.commands.export_sampler import add_sampler_flags, run_sampler_export
from pixmorph.errors import ConfigError
from pixmorph.inference.export import EXPORTERS
from pixmorph.inference.export import SUFFIXES as EXPORT_SUFFIXES
from pixmorph.inference.generation import generates
from pixmorph.inference.loading import load_generator, load_logits
from pixmorph.inference.translator import Translator
from pixmorph.interop.facts import describe
from pixmorph.interop.weights import net_facts, reference_state_dict


def export_reference_state_dict(translator: Translator, out: Path) -> str:
    """The generator as a plain state dict in the reference pix2pix/CycleGAN layout."""
    state = reference_state_dict(translator.generator.module)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, out)
    else:
        save_atomic(state, out)  # type: ignore[arg-type]
    facts = net_facts(translator.generator.module)
    return f"{len(state)} tensors of a generator with {describe(facts, 'flags')}"


def _runnable(fmt: str) -> Callable[[Translator, Path], str]:
    def write(translator: Translator, out: Path) -> str:
        path = EXPORTERS[fmt](translator, out)
        note = ""
        if translator.generator.style_dim:
            # one graph input only: the style is fixed; other styles come from the checkpoint
            note = "; multimodal model: exported with the zero style code built in (--styles "
            note += "and --style-from need the checkpoint)"
        return f"translate with: pixmorph translate --checkpoint {path}{note}"

    return write


# format name -> writer(translator, out path) returning a one-line summary
FORMATS: dict[str, Callable[[Translator, Path], str]] = {
    "reference-state-dict": export_reference_state_dict,
    **{fmt: _runnable(fmt) for fmt in EXPORTERS},
}
SUFFIXES = {"reference-state-dict": ".pth", **EXPORT_SUFFIXES}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained generator for other tools (ONNX, TorchScript, reference layout)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--format", choices=list(FORMATS), default="onnx", help="what to write")
    p.add_argument(
        "--out",
        "--output",
        dest="out",
        help="file to write (default: generator.<format> beside the run)",
    )
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="for models that go both ways")
    p.add_argument(
        "--logits",
        action="store_true",
        help="segmentation: export the network giving per-class logits (B, K, H, W) instead of "
        "the colour label map (onnx, torchscript)",
    )
    add_sampler_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if generates(args.checkpoint):  # a generator (StyleGAN): its sampler, z in, images out
        return run_sampler_export(args, _default_output(args.checkpoint, args.format, None))
    if args.logits and args.format not in EXPORTERS:
        raise ConfigError(f"--logits writes {' or '.join(EXPORTERS)}, not {args.format}")
    load = load_logits if args.logits else load_generator
    translator = load(args.checkpoint, args.direction, "cpu")
    name = "logits" if args.logits else "generator"
    out = (
        Path(args.out)
        if args.out
        else _default_output(args.checkpoint, args.format, args.direction, name)
    )
    summary = FORMATS[args.format](translator, out)
    print(f"wrote {out} ({args.format}): {summary}")
    return 0


def _default_output(
    checkpoint: str, fmt: str, direction: str | None, name: str = "generator"
) -> Path:
    p = Path(checkpoint)
    folder = p if p.is_dir() else p.parent
    name += f"_{direction}" if direction else ""
    return folder / f"{name}{SUFFIXES[fmt]}"
