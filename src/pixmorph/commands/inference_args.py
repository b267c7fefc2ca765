"""The device and precision flags of the commands that run a trained model."""

from __future__ import annotations

import argparse

from pixmorph.inference.translator import ENSEMBLES


def add_device_flags(p: argparse.ArgumentParser) -> None:
    """--device and --precision, as translate and serve take them."""
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16 where the CPU/GPU runs it natively, else fp32",
    )


def add_ensemble_flag(p: argparse.ArgumentParser) -> None:
    """--ensemble, as translate and evaluate take it (Translator.ensemble)."""
    p.add_argument(
        "--ensemble",
        type=int,
        choices=ENSEMBLES,
        default=1,
        help="average the outputs of 1, 2 (with the mirror image) or 8 (every flip and quarter "
        "turn) orientations of each input: up to 8x the time, a little more accurate "
        "(super-resolution: docs/super_resolution.md)",
    )
