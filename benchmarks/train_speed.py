"""Training speed: seconds per step, images/s, GFLOP/s and memory of a training step, batch 1.

python benchmarks/train_speed.py --compare               # baseline vs fastest, the issue's cases
python benchmarks/train_speed.py --compare --compile     # fastest also uses torch.compile
python benchmarks/train_speed.py --cases pix2pix_128 --settings baseline,fp32_fused,bf16,fastest

Every setting of a case runs in a worker process of its own (the allocator setting is
process-wide, so a baseline sharing pixmorph's process would not be the baseline), and the
workers are timed round-robin in this one run, one step at a time and never two at once, so
drift of a shared machine hits all settings alike; compare ratios, not seconds.
s/step, img/s, GFLOP/s and `speedup` use the median step; `best` and `(best)` the fastest step,
which other processes on a shared machine disturb least.
`baseline` is how the reference implementations train: fp32, eager, NCHW, per-parameter Adam,
torch's own convolutions, the C library's default allocator. `baseline_reuse` is the same with
pixmorph's allocator setting alone. `fastest` is pixmorph's default (every speed setting on
`auto`) for the device.
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass
from typing import Any

import torch
from measure import (
    count_flops,
    interleaved_workers,
    matmul_peak,
    serve,
    step_peak_bytes,
    tensor_bytes,
)

from pixmorph.device import pick_device
from pixmorph.methods.base import Method
from pixmorph.methods.registry import METHODS
from pixmorph.methods.settings import build_config
from pixmorph.training.trainer import build_method

EAGER = {"compile": False, "small_maps": False}
SETTINGS: dict[str, dict[str, Any]] = {
    "baseline": {
        "precision": "fp32",
        "channels_last": False,
        "adam": "loop",
        "compile": False,
        "small_maps": False,
        "allocator": "system",
    },
    "baseline_reuse": {  # the baseline with pixmorph's allocator setting only
        "precision": "fp32",
        "channels_last": False,
        "adam": "loop",
        "compile": False,
        "small_maps": False,
        "allocator": "reuse",
    },
    "fp32_fused": {
        "precision": "fp32",
        "channels_last": False,
        "adam": "fused",
        "small_maps": False,
    },
    "bf16": {"precision": "bf16", "channels_last": False, "adam": "fused", "small_maps": False},
    "bf16_cl": {"precision": "bf16", "channels_last": True, "adam": "fused", "small_maps": False},
    "bf16_small_maps": {
        "precision": "bf16",
        "channels_last": False,
        "adam": "fused",
        "small_maps": True,
    },
    "fastest": {},  # every speed setting on auto (plus compile with --compile)
    "fastest_eager": {"compile": False},  # auto, never compiled (short runs, 1-thread timings)
}


@dataclass
class Case:
    """One benchmark: a method at a size."""

    method: str
    size: int
    model: dict


CASES: dict[str, Case] = {
    "pix2pix_256": Case("pix2pix", 256, {"generator": {"arch": "unet_256"}}),
    "pix2pix_128": Case("pix2pix", 128, {"generator": {"arch": "unet_128"}}),
    "pix2pix_64": Case("pix2pix", 64, {"generator": {"arch": "unet_64"}}),
    "pix2pix_32": Case("pix2pix", 32, {"generator": {"arch": "unet_32"}}),
    "cyclegan_64": Case("cyclegan", 64, {"generator": {"arch": "resnet_9blocks"}}),
    "cyclegan_128": Case("cyclegan", 128, {"generator": {"arch": "resnet_9blocks"}}),
    "cyclegan_256": Case("cyclegan", 256, {"generator": {"arch": "resnet_9blocks"}}),
    # CUT and FastCUT: the published generator and PatchNCE defaults of each method
    "cut_128": Case("cut", 128, {"generator": {"arch": "resnet_9blocks"}}),
    "cut_256": Case("cut", 256, {"generator": {"arch": "resnet_9blocks"}}),
    "fastcut_128": Case("fastcut", 128, {"generator": {"arch": "resnet_9blocks"}}),
    "fastcut_256": Case("fastcut", 256, {"generator": {"arch": "resnet_9blocks"}}),
}
COMPARE_CASES = ("pix2pix_256", "cyclegan_128")


def build(case: Case, setting: dict[str, Any], device: str) -> Method:
    """The method of a case with one speed setting, prepared as the trainer prepares it."""
    tree = {
        "method": case.method,
        "data": {"crop_size": case.size, "load_size": case.size},
        "train": {"batch_size": 1, "device": device, **setting},
        "model": case.model,
    }
    cfg = build_config(tree)
    torch.manual_seed(0)
    return build_method(cfg, pick_device(cfg.train.device))


def random_batch(size: int, device: torch.device) -> dict[str, Any]:
    """A paired batch of noise images (speed does not depend on content)."""
    a = torch.rand(1, 3, size, size) * 2 - 1
    b = torch.rand(1, 3, size, size) * 2 - 1
    return {"a": a, "b": b, "path": ["noise"]}


def state_bytes(method: Method) -> int:
    """Weights, gradients and optimizer state of a method."""
    total = tensor_bytes(method.parameters()) + tensor_bytes(method.buffers())
    total += tensor_bytes(p.grad for p in method.parameters())
    for opt in method.runtime.optimizers.values():
        for s in opt.state.values():
            total += tensor_bytes(s.values())
    return total


def worker(case_name: str, setting_name: str, compile_: bool, device: str) -> None:
    """Worker process: build one setting of a case and serve timed steps to the parent."""
    case = CASES[case_name]
    setting = dict(SETTINGS[setting_name])
    if setting_name == "fastest" and compile_:
        setting["compile"] = True
    method = build(case, setting, device)
    batch = random_batch(case.size, method.device)
    p = method.runtime.plan
    plan = (
        f"{p.precision} cl={int(p.channels_last)} compile={int(p.compile)} adam={p.adam} "
        f"sm={int(p.small_maps)} {p.allocator}"
    )

    def finish() -> dict:
        peak = step_peak_bytes(lambda: method.train_step(batch, 0), method.device)
        return {"memory": state_bytes(method) + peak}

    serve(lambda i: method.train_step(batch, i + 1), {"plan": plan}, finish)


def step_flops(case: Case, device: str) -> int:
    """FLOPs of one fp32 training step of a case (the same for every setting)."""
    method = build(case, dict(SETTINGS["baseline"]), device)
    batch = random_batch(case.size, method.device)
    return count_flops(lambda: method.train_step(batch, 0))


def run_case(name: str, names: list[str], args: argparse.Namespace, peak_bf16: float) -> None:
    """Time every setting of a case in its own worker process, round-robin; print one table."""
    case = CASES[name]
    stand_in = "" if case.method in METHODS else " (CycleGAN-shaped stand-in)"
    flops = step_flops(case, args.device)
    options = ["--device", args.device, "--threads", str(args.threads)]
    options += ["--compile"] if args.compile else []
    workers = {s: [name, s] for s in names}
    timings, infos, results = interleaved_workers(
        __file__, workers, options, args.steps, args.warmup
    )
    print(f"\n{name}{stand_in}: {case.size}x{case.size}, batch 1, {flops / 1e9:.1f} GFLOP/step")
    print(
        f"{'setting':<16} {'plan':<46} {'s/step':>7} {'best':>7} {'cpu s':>7} {'img/s':>6} "
        f"{'speedup':>8} {'(best)':>7} {'GFLOP/s':>8} {'of bf16':>7} {'peak MB':>8}"
    )
    base = timings[names[0]]
    for s, t in timings.items():
        print(
            f"{s:<16} {infos[s]['plan']:<46} {t.median:>7.3f} {t.best:>7.3f} "
            f"{t.cpu_median:>7.3f} {1 / t.median:>6.2f} {base.median / t.median:>7.2f}x "
            f"{base.best / t.best:>6.2f}x {flops / t.median / 1e9:>8.1f} "
            f"{flops / t.median / 1e9 / peak_bf16:>6.0%} {results[s]['memory'] / 2**20:>8.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compare", action="store_true", help="baseline vs fastest, issue cases")
    parser.add_argument("--cases", help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--settings", help=f"comma list of {', '.join(SETTINGS)}")
    parser.add_argument("--compile", action="store_true", help="fastest also uses torch.compile")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(*args.worker, args.compile, args.device)
        return
    cases = args.cases.split(",") if args.cases else list(COMPARE_CASES if args.compare else CASES)
    names = args.settings.split(",") if args.settings else ["baseline", "fastest"]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    peak_fp32 = matmul_peak(torch.float32)
    peak_bf16 = matmul_peak(torch.bfloat16)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; 4096^2 matmul: fp32 {peak_fp32:.0f}, "
        f"bf16 {peak_bf16:.0f} GFLOP/s"
    )
    for name in cases:
        run_case(name, names, args, peak_bf16)


if __name__ == "__main__":
    main()
