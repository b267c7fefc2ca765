"""The device and precision flags of the commands that run a trained model."""

from __future__ import annotations

import argparse


def add_device_flags(p: argparse.ArgumentParser) -> None:
    """--device and --precision, as translate and serve take them."""
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16 where the CPU/GPU runs it natively, else fp32",
    )
