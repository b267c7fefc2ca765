"""`pixmorph export` of a generator checkpoint: the sampler, z (and truncation) in, images out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.errors import ConfigError
from pixmorph.inference.export_sampler import SAMPLER_EXPORTERS
from pixmorph.inference.generation import load_sampler


def add_sampler_flags(p: Any) -> None:
    g = p.add_argument_group("generators (StyleGAN): the sampler is exported")
    g.add_argument(
        "--truncation",
        type=float,
        default=1.0,
        help="the example's psi; samplers without a mapping keep it fixed (StyleGAN takes psi "
        "as an input)",
    )
    g.add_argument("--batch", type=int, default=1, help="z per call (the file's fixed batch)")


def run_sampler_export(args: argparse.Namespace, default_out: Path) -> int:
    if args.format not in SAMPLER_EXPORTERS:
        raise ConfigError(
            f"--format {args.format}: a generator exports as {' or '.join(SAMPLER_EXPORTERS)}"
        )
    model = load_sampler(args.checkpoint, "cpu")
    out = Path(args.out) if args.out else default_out.with_name("sampler" + default_out.suffix)
    SAMPLER_EXPORTERS[args.format](model, out, args.truncation, args.batch)
    inputs = "z (B, z_dim), truncation (1,)" if model.has_latents else "z (B, z_dim)"
    print(
        f"wrote {out} ({args.format}): inputs {inputs} with B={args.batch}, "
        f"output images (B, {model.sampler.out_channels}, {model.sampler.size}, "
        f"{model.sampler.size}) in [-1, 1]"
    )
    return 0
