"""The flags that describe a reference pix2pix/CycleGAN weights file, shared by commands."""

from __future__ import annotations

import argparse
import typing

from pixmorph.nets.factory import GeneratorArch

ARCHS = [a for a in typing.get_args(GeneratorArch) if a != "auto"]


def add_reference_flags(p: argparse.ArgumentParser) -> None:
    """--arch, --norm, --no-dropout: read off the file where it can tell, else these or defaults."""
    g = p.add_argument_group(
        "plain pix2pix/CycleGAN state dicts (latest_net_G.pth); ignored for pixmorph checkpoints"
    )
    g.add_argument("--arch", choices=ARCHS, help="generator architecture (default: from the file)")
    g.add_argument(
        "--norm", choices=["batch", "instance"], help="normalisation (default: from the file)"
    )
    g.add_argument(
        "--no-dropout",
        dest="dropout",
        action="store_const",
        const=False,
        default=None,
        help="the generator was trained without dropout (ResNet files show it; U-Net files "
        "cannot, and default to dropout)",
    )
