"""`pixmorph generate`: images from a generator checkpoint (StyleGAN): samples, a grid, style
mixing between seeds or projected photos, and interpolations (a strip and an animated GIF)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.data.images import save_image
from pixmorph.errors import ConfigError
from pixmorph.inference.generation import (
    Source,
    generate,
    interpolate,
    load_sampler,
    save_gif,
    style_mix,
    tile,
)

EPILOG = """\
Sources (SRC) are seeds (integers) or latent files written by `pixmorph project` (.pt).
Image i of --n comes from seed --seed + i, so `--n 1 --seed 7` remakes image 7 of `--seed 0`.
Examples:
  pixmorph generate --checkpoint runs/sg --n 64 --seed 0 --truncation 0.7 --grid
  pixmorph generate --checkpoint runs/sg --mix-rows 1,2,3 --mix-cols 4,5,6 --mix-from 4
  pixmorph generate --checkpoint runs/sg --mix photo.pt 12 --mix-from 2
  pixmorph generate --checkpoint runs/sg --interpolate 3 9 --frames 16 --gif
"""


def parse_source(text: str) -> Source:
    """A seed (an integer) or the path of a latent file."""
    try:
        return int(text)
    except ValueError:
        return Path(text)


def parse_sources(text: str) -> list[Source]:
    """A comma-separated list of sources, e.g. 1,2,3 or a.pt,7."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one seed or latent file")
    return [parse_source(t) for t in items]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="images from a generator (StyleGAN): samples, grids, style mixing, interpolation",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint of a generator")
    p.add_argument("--output", "--out", dest="output", help="folder (default: RUN/generated)")
    p.add_argument("--n", type=int, default=16, help="images to sample (default 16)")
    p.add_argument("--seed", type=int, default=0, help="image i comes from seed + i (default 0)")
    p.add_argument(
        "--truncation", type=float, default=1.0, help="psi: 1 no truncation, 0.7 typical, 0 mean"
    )
    p.add_argument("--grid", action="store_true", help="also write the samples as grid.png")
    p.add_argument("--grid-cols", type=int, default=8, help="columns of grid.png (default 8)")
    mix = p.add_argument_group("style mixing (writes mix.png; no --n samples then)")
    mix.add_argument(
        "--mix", nargs=2, metavar=("SRC_A", "SRC_B"), help="one cell: coarse of A, fine of B"
    )
    mix.add_argument("--mix-rows", type=parse_sources, help="sources of coarse styles: 1,2,3")
    mix.add_argument("--mix-cols", type=parse_sources, help="sources of fine styles: 4,5,6")
    mix.add_argument(
        "--mix-from",
        type=int,
        default=4,
        help="first style layer taken from the column source (default 4; low: more from it)",
    )
    lerp = p.add_argument_group("interpolation (writes interpolation.png)")
    lerp.add_argument("--interpolate", nargs=2, metavar=("SRC_A", "SRC_B"))
    lerp.add_argument("--frames", type=int, default=8, help="frames, both ends included")
    lerp.add_argument("--gif", action="store_true", help="also interpolation.gif (animated)")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run)


def default_output(checkpoint: str) -> Path:
    p = Path(checkpoint)
    run_dir = p if p.is_dir() else (p.parent.parent if p.parent.name == "checkpoints" else p.parent)
    return run_dir / "generated"


def mix_sources(args: argparse.Namespace) -> tuple[list[Source], list[Source]] | None:
    """(rows, cols) of the mixing grid the flags ask for, or None."""
    if args.mix and (args.mix_rows or args.mix_cols):
        raise ConfigError("give --mix A B, or --mix-rows and --mix-cols, not both")
    if args.mix:
        return [parse_source(args.mix[0])], [parse_source(args.mix[1])]
    if bool(args.mix_rows) != bool(args.mix_cols):
        raise ConfigError("style mixing needs both --mix-rows (coarse) and --mix-cols (fine)")
    return (args.mix_rows, args.mix_cols) if args.mix_rows else None


def run(args: argparse.Namespace) -> int:
    model = load_sampler(args.checkpoint, args.device)
    out = Path(args.output) if args.output else default_output(args.checkpoint)
    psi = args.truncation
    mixing = mix_sources(args)
    if mixing:
        grid = style_mix(model, *mixing, mix_from=args.mix_from, truncation=psi)
        save_image(grid.image(), out / "mix.png")
        print(f"wrote {out / 'mix.png'} ({len(mixing[0])} x {len(mixing[1])} mixes)")
    if args.interpolate:
        a, b = (parse_source(s) for s in args.interpolate)
        frames = interpolate(model, a, b, args.frames, psi)
        save_image(tile(frames, cols=len(frames)), out / "interpolation.png")
        print(f"wrote {out / 'interpolation.png'} ({len(frames)} frames)")
        if args.gif:
            print(f"wrote {save_gif(frames, out / 'interpolation.gif')}")
    if mixing or args.interpolate:
        return 0
    images = generate(model, args.n, args.seed, psi)
    for i, img in enumerate(images):
        save_image(img, out / f"seed{args.seed + i:06d}.png")
    print(f"wrote {len(images)} images to {out} (seeds {args.seed}..{args.seed + len(images) - 1})")
    if args.grid:
        save_image(tile(images, args.grid_cols), out / "grid.png")
        print(f"wrote {out / 'grid.png'}")
    return 0
