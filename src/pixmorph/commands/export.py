"""`pixmorph export`: write a trained generator in a format other tools read."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixmorph.checkpoint import save_atomic
from pixmorph.infer import Translator, load_generator
from pixmorph.reference_facts import describe
from pixmorph.reference_weights import net_facts, reference_state_dict


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


# format name -> writer(translator, out path) returning a one-line summary
FORMATS: dict[str, Callable[[Translator, Path], str]] = {
    "reference-state-dict": export_reference_state_dict,
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained generator for other tools",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="what to write")
    p.add_argument("--out", required=True, help="file to write (.pth, or .safetensors)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="for models that go both ways")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    translator = load_generator(args.checkpoint, args.direction, device="cpu")
    out = Path(args.out)
    summary = FORMATS[args.format](translator, out)
    print(f"wrote {out} ({args.format}): {summary}")
    return 0
