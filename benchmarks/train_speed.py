"""Training speed: seconds per step, images/s, GFLOP/s and memory of a training step, batch 1.

python benchmarks/train_speed.py --compare --quick       # ~3 min on the 2-core benchmark CPU
python benchmarks/train_speed.py --compare               # baseline vs fastest, the issue's cases
python benchmarks/train_speed.py --compare --compile     # fastest also uses torch.compile
python benchmarks/train_speed.py --cases pix2pix_128 --settings baseline,fp32_fused,bf16,fastest
python benchmarks/train_speed.py --cases pix2pix_256 --settings baseline,fp32_rules,fp32_auto --parts
python benchmarks/train_speed.py --isa avx2 --compare    # torch's AVX2 kernels, as on a Zen 3

Time on the 2-core benchmark CPU (idle, warm calibration cache; estimated from its measured
step times, not yet timed whole on a quiet machine): `--compare --quick` about 3 minutes, `--compare` about 6 (the fastest CycleGAN compiles in its warm-up: 1-3 minutes more
with a cold compile cache); a CPU class whose settings were not measured calibrates `fastest`
and `fp32_auto` once per machine and size (about a minute per case, cached). Progress is
printed as each round of steps completes, flushed also into a pipe or a file.
`--parts` adds where each setting's step goes: reading a batch of images, forward per network,
backward and optimizer per optimizer, the rest of train_step, writing the log line.
`--isa avx2` runs everything with torch's, oneDNN's and MKL's AVX2 kernels (no AVX-512, no
bf16 or AMX instructions): the software path of an AVX2-only CPU such as AMD Zen 3, though not
its clock, caches or memory.

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
import gc
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from measure import (
    count_flops,
    interleaved_workers,
    line_buffered,
    machine_line,
    matmul_peak,
    serve,
    step_peak_bytes,
    tensor_bytes,
)
from step_parts import StepParts, data_timer, jsonl_logger, parts_table

from pixmorph.device import cpu_has_native_bf16, pick_device
from pixmorph.methods.base import Method
from pixmorph.methods.registry import METHODS
from pixmorph.methods.settings import build_config
from pixmorph.training.trainer import build_method

EAGER = {"compile": False, "small_maps": False}
# how the reference implementations train (see the module's docstring)
BASELINE: dict[str, Any] = {
    "precision": "fp32",
    "channels_last": False,
    "adam": "loop",
    "compile": False,
    "small_maps": False,
    "allocator": "system",
    "batch_passes": False,
}
SETTINGS: dict[str, dict[str, Any]] = {
    "baseline": BASELINE,
    "baseline_reuse": {**BASELINE, "allocator": "reuse"},  # pixmorph's allocator setting only
    "baseline_batched": {**BASELINE, "batch_passes": True},  # pixmorph's batched passes only
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
    # what an fp32-only CPU runs: fp32 with the other settings on auto, calibrated where the
    # CPU class was not measured; fp32_rules takes plan.py's rules without calibrating
    "fp32_auto": {"precision": "fp32"},
    "fp32_rules": {"precision": "fp32", "calibrate": False},
    # fp32, eager, the rest on auto, with the passes through one generator batched or each run
    # on its own (train.batch_passes)
    "fp32_batched": {"precision": "fp32", "compile": False, "batch_passes": True},
    "fp32_apart": {"precision": "fp32", "compile": False, "batch_passes": False},
    "fastest": {},  # every speed setting on auto (plus compile with --compile)
    "fastest_eager": {"compile": False},  # auto, never compiled (short runs, 1-thread timings)
}
# kernel caps for --isa: torch's own kernels, oneDNN's and MKL's
ISA_ENV = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    }
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
    batch = random_batch(case.size, torch.device("cpu"))
    return build_method(cfg, pick_device(cfg.train.device), batch=lambda: batch)  # may calibrate


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


def worker(case_name: str, setting_name: str, args: argparse.Namespace) -> None:
    """Worker process: build one setting of a case and serve timed steps to the parent."""
    case = CASES[case_name]
    setting = dict(SETTINGS[setting_name])
    if setting_name == "fastest" and (args.compile or args.quick):
        setting["compile"] = bool(args.compile)
    method = build(case, setting, args.device)
    batch = random_batch(case.size, method.device)
    p = method.runtime.plan
    plan = (
        f"{p.precision} cl={int(p.channels_last)} compile={int(p.compile)} adam={p.adam} "
        f"sm={int(p.small_maps)} bp={int(p.batch_passes)} {p.allocator}"
    )
    plan += " (calibrated)" if "calibrated" in p.origin else ""

    def finish() -> dict:
        peak = step_peak_bytes(lambda: method.train_step(batch, 0), method.device)
        return {"memory": state_bytes(method) + peak}

    step = lambda i: method.train_step(batch, i + 1)  # noqa: E731
    if args.parts:
        parts, log = StepParts(method), jsonl_logger()
        read = data_timer(method.cfg, method, case.size)

        def step(i: int) -> dict[str, float]:
            seconds = read()
            return {"data": seconds, **parts.measure(lambda: method.train_step(batch, i + 1), log)}

    serve(step, {"plan": plan}, finish)


def step_flops(case: Case, device: str) -> int:
    """FLOPs of one fp32 training step of a case (the same for every setting)."""
    method = build(case, dict(SETTINGS["baseline"]), device)
    batch = random_batch(case.size, method.device)
    return count_flops(lambda: method.train_step(batch, 0))


def calibrate_first(case: Case, names: list[str], args: argparse.Namespace) -> None:
    """Calibrate the settings that may, one at a time here, so the workers (which start
    together) read the cached choice instead of timing candidates side by side."""
    for name in names:
        setting = dict(SETTINGS[name])
        if setting.get("calibrate", "auto") is False or name.startswith("baseline"):
            continue
        if name == "fastest" and (args.compile or args.quick):
            setting["compile"] = False  # the workers' own compile does not change the choice
        t0 = time.perf_counter()
        origin = build(case, setting, args.device).runtime.plan.origin
        print(f"  {name}: {origin} ({time.perf_counter() - t0:.0f} s)")
        gc.collect()


def run_case(
    name: str, names: list[str], args: argparse.Namespace, peak_fp32: float, peak_bf16: float
) -> None:
    """Time every setting of a case in its own worker process, round-robin; print one table."""
    case = CASES[name]
    stand_in = "" if case.method in METHODS else " (CycleGAN-shaped stand-in)"
    print(f"\n{name}: counting FLOPs, starting {len(names)} workers ({', '.join(names)})")
    flops = step_flops(case, args.device)
    calibrate_first(case, names, args)
    options = ["--device", args.device, "--threads", str(args.threads)]
    options += [f for f in ("--compile", "--quick", "--parts") if getattr(args, f[2:])]
    workers = {s: [name, s] for s in names}
    timings, infos, results = interleaved_workers(
        __file__, workers, options, args.steps, args.warmup, lambda line: print(f"  {line}")
    )
    print(f"\n{name}{stand_in}: {case.size}x{case.size}, batch 1, {flops / 1e9:.1f} GFLOP/step")
    print(
        f"{'setting':<16} {'plan':<46} {'s/step':>7} {'best':>7} {'cpu s':>7} {'img/s':>6} "
        f"{'speedup':>8} {'(best)':>7} {'GFLOP/s':>8} {'of fp32':>7} {'of bf16':>7} "
        f"{'peak MB':>8}"
    )
    base = timings[names[0]]
    for s, t in timings.items():
        print(
            f"{s:<16} {infos[s]['plan']:<46} {t.median:>7.3f} {t.best:>7.3f} "
            f"{t.cpu_median:>7.3f} {1 / t.median:>6.2f} {base.median / t.median:>7.2f}x "
            f"{base.best / t.best:>6.2f}x {flops / t.median / 1e9:>8.1f} "
            f"{_share(flops / t.median / 1e9, peak_fp32):>7} "
            f"{_share(flops / t.median / 1e9, peak_bf16):>7} {results[s]['memory'] / 2**20:>8.0f}"
        )
    if args.parts:
        print("where the step goes (medians; data: read + decode + augment one batch):")
        for line in parts_table({s: t.parts for s, t in timings.items()}):
            print(line)


def _share(gflops: float, peak: float) -> str:
    return "-" if math.isnan(peak) else f"{gflops / peak:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compare", action="store_true", help="baseline vs fastest, issue cases")
    parser.add_argument("--cases", help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--settings", help=f"comma list of {', '.join(SETTINGS)}")
    parser.add_argument("--compile", action="store_true", help="fastest also uses torch.compile")
    parser.add_argument(
        "--quick", action="store_true", help="3 timed steps, 1 warm-up, no compile (~3 min)"
    )
    parser.add_argument("--parts", action="store_true", help="time the parts of each step")
    parser.add_argument("--isa", choices=sorted(ISA_ENV), help="cap the kernels (see above)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per setting (6)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps (2)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.isa and any(os.environ.get(k) != v for k, v in ISA_ENV[args.isa].items()):
        # MKL and oneDNN read their caps when they load: start again with them set
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **ISA_ENV[args.isa]})
    if args.steps is None:
        args.steps = 3 if args.quick else 6
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(*args.worker, args)
        return
    line_buffered()
    print(machine_line())
    cases = args.cases.split(",") if args.cases else list(COMPARE_CASES if args.compare else CASES)
    names = args.settings.split(",") if args.settings else ["baseline", "fastest"]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    peak_fp32 = matmul_peak(torch.float32)
    # emulated bf16 runs a 4096^2 matmul for minutes: no peak to compare with there
    peak_bf16 = matmul_peak(torch.bfloat16) if cpu_has_native_bf16() else float("nan")
    print(f"4096^2 matmul: fp32 {peak_fp32:.0f}, bf16 {peak_bf16:.0f} GFLOP/s", flush=True)
    for name in cases:
        run_case(name, names, args, peak_fp32, peak_bf16)


if __name__ == "__main__":
    main()
