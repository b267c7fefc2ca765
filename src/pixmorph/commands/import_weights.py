"""`pixmorph import-weights`: convert a pix2pix/CycleGAN state dict into a pixmorph checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.checkpoint import FORMAT, save_atomic
from pixmorph.commands.reference_args import add_reference_flags
from pixmorph.errors import ConfigError
from pixmorph.interop.weights import import_reference, plain_state, read_file


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "import-weights",
        help="convert a pix2pix/CycleGAN generator state dict into a pixmorph checkpoint",
        description="Convert once; the checkpoint records the architecture, so translate, "
        "evaluate and train --init-generator need no flags afterwards.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="latest_net_G.pth, latest_net_G_A.pth, ...")
    p.add_argument("--out", required=True, help="pixmorph checkpoint file to write")
    p.add_argument(
        "--direction",
        choices=["AtoB", "BtoA"],
        default="AtoB",
        help="the direction the generator translates, as the data's A|B halves are laid out",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    add_reference_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"--out {out} exists; use --force to overwrite it")
    p, obj = read_file(args.file)
    if obj.get("format") == FORMAT:
        raise ConfigError(f"{p} is already a pixmorph checkpoint; there is nothing to import")
    ckpt = import_reference(
        plain_state(obj, str(p)), str(p), args.arch, args.norm, args.dropout, args.direction
    )
    save_atomic(ckpt, out)
    g = ckpt["config"]["model"]["generator"]
    print(
        f"wrote {out}: {g['arch']}, ngf {g['ngf']}, norm {g['norm']}, "
        f"dropout {'on' if g['dropout'] else 'off'}, {ckpt['config']['data']['direction']}"
    )
    return 0
