"""Training speed: seconds per step and images/s of a training step, batch 1, on this machine.

python benchmarks/train_speed.py [--cases pix2pix_256,pix2pix_128] [--steps 10] [--warmup 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pixmorph.config import build_config
from pixmorph.device import pick_device
from pixmorph.methods.registry import get_method


@dataclass
class Case:
    """One benchmark: a method at a size, with its batch maker."""

    method: str
    size: int
    model: dict
    batch: Callable[[int], dict]


def paired_batch(size: int) -> dict:
    return {"a": torch.rand(1, 3, size, size) * 2 - 1, "b": torch.rand(1, 3, size, size) * 2 - 1}


CASES: dict[str, Case] = {
    "pix2pix_256": Case("pix2pix", 256, {"generator": {"arch": "unet_256"}}, paired_batch),
    "pix2pix_128": Case("pix2pix", 128, {"generator": {"arch": "unet_128"}}, paired_batch),
    # the published CycleGAN: two resnet_9blocks generators, two PatchGANs (a, b unpaired)
    "cyclegan_256": Case("cyclegan", 256, {"generator": {"arch": "resnet_9blocks"}}, paired_batch),
    "cyclegan_128": Case("cyclegan", 128, {"generator": {"arch": "resnet_9blocks"}}, paired_batch),
}


def time_case(case: Case, steps: int, warmup: int, overrides: dict) -> list[float]:
    """Seconds of each timed training step."""
    tree = {
        "method": case.method,
        "data": {"crop_size": case.size, "load_size": case.size},
        "train": {"batch_size": 1, **overrides.get("train", {})},
        "model": case.model,
    }
    cfg = build_config(tree)
    method = get_method(case.method)(cfg, pick_device(cfg.train.device), training=True)
    batch = case.batch(case.size)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        method.train_step(batch, i + 1)
        if method.device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}"
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(f"{'case':<16} {'s/step (median)':>16} {'min':>8} {'images/s':>9}")
    for name in args.cases.split(","):
        times = time_case(CASES[name], args.steps, args.warmup, {})
        med = statistics.median(times)
        print(f"{name:<16} {med:>16.3f} {min(times):>8.3f} {1 / med:>9.2f}")


if __name__ == "__main__":
    main()
