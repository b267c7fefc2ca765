"""`pixmorph export`: write a trained generator in a format other tools can run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.export_formats import EXPORTERS, SUFFIXES
from pixmorph.infer import load_generator


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained generator (ONNX, TorchScript)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--format", choices=sorted(EXPORTERS), default="onnx")
    p.add_argument("--output", help="file to write (default: generator.<format> beside the run)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="for models that go both ways")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    translator = load_generator(args.checkpoint, args.direction, "cpu", "fp32")
    out = args.output or _default_output(args.checkpoint, args.format, args.direction)
    path = EXPORTERS[args.format](translator, out)
    print(f"wrote {path} ({args.format}); translate with: pixmorph translate --checkpoint {path}")
    return 0


def _default_output(checkpoint: str, fmt: str, direction: str | None) -> Path:
    p = Path(checkpoint)
    folder = p if p.is_dir() else p.parent
    name = "generator" + (f"_{direction}" if direction else "")
    return folder / f"{name}{SUFFIXES[fmt]}"
