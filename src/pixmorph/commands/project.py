"""`pixmorph project`: find the latent of a real image, to mix and edit it like a generated one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pixmorph.data.images import open_image, save_image, to_tensor
from pixmorph.errors import DataError
from pixmorph.inference.generation import load_sampler
from pixmorph.inference.projection import project


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "project",
        help="optimize a generator's w (or w+) to reproduce a photo; saves latent and image",
        description="Pixel MSE at full, 1/2 and 1/4 size, Adam on w from the mean w, noise "
        "fixed. The latent (.pt, loadable with weights_only=True) works as a source of "
        "`pixmorph generate --mix/--mix-rows/--mix-cols/--interpolate`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint of a generator")
    p.add_argument("--image", required=True, help="the photo (resized to the generator's size)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument(
        "--w-plus", action="store_true", help="one w per style layer (closer, less editable)"
    )
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0, help="seed of the start's jitter")
    p.add_argument("--output", "--out", dest="output", help="folder (default: beside the image)")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run)


def load_target(path: Path, channels: int, size: int) -> torch.Tensor:
    """The photo as (1, C, size, size) in [-1, 1]: centre-cropped to a square, then resized."""
    if not path.is_file():
        raise DataError(f"--image {path} does not exist")
    x = to_tensor(open_image(path, channels))  # (C, H, W)
    h, w = x.shape[1:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, top : top + side, left : left + side]
    return F.interpolate(x[None], size=(size, size), mode="area" if side > size else "bilinear")


def run(args: argparse.Namespace) -> int:
    model = load_sampler(args.checkpoint, args.device)
    image = Path(args.image)
    target = load_target(image, model.sampler.out_channels, model.sampler.size)
    result = project(model, target, args.steps, args.w_plus, args.lr, seed=args.seed)
    out = Path(args.output) if args.output else image.parent
    kind = "wplus" if args.w_plus else "w"
    latent = result.save(out / f"{image.stem}_{kind}.pt", str(args.checkpoint), model.step)
    save_image(result.image[0], out / f"{image.stem}_{kind}_projected.png")
    save_image(target[0], out / f"{image.stem}_target.png")
    first, last = result.losses[0], result.losses[-1]
    print(f"loss {first:.4f} -> {last:.4f} in {args.steps} steps")
    print(f"latent: {latent}  image: {out / f'{image.stem}_{kind}_projected.png'}")
    print(f"mix it: pixmorph generate --checkpoint {args.checkpoint} --mix {latent} 0")
    return 0
