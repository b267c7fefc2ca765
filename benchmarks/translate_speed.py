"""Translation speed: one image through a generator, by engine and precision, batch 1.

python benchmarks/translate_speed.py                      # unet_256 and resnet_9blocks at 256^2
python benchmarks/translate_speed.py --archs unet_256 --size 512 --repeats 10 --threads 2
python benchmarks/translate_speed.py --compile            # adds `translate --compile`

Every variant runs in a worker process of its own (the allocator setting is process-wide) and
the workers are timed round-robin in this one run, one call at a time; compare ratios, not
seconds. `fp32` is plain eager PyTorch with the C library's default allocator (the baseline);
`fp32_reuse` adds pixmorph's allocator setting alone. On a CPU with native bf16, `pixmorph
translate` uses `bf16_cl` (weights cast once, channels_last, small maps as matmuls) for networks
without instance norm and `bf16` for those with it; `onnxruntime` runs the file `pixmorph
export --format onnx` writes. Each variant's largest difference from fp32 is
shown, in [-1, 1] units (one 8-bit level is 0.0078). `speedup` compares medians, `(best)` the
fastest calls, which other processes on a shared machine disturb least.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from measure import (
    count_flops,
    interleaved_workers,
    line_buffered,
    machine_line,
    matmul_peak,
    serve,
)

from pixmorph.device import autocast
from pixmorph.inference.translator import Translator
from pixmorph.methods.base import Generator
from pixmorph.methods.settings import build_config
from pixmorph.nets.factory import GeneratorConfig, build_generator, size_multiple
from pixmorph.speed.allocator import reuse_freed_memory
from pixmorph.speed.plan import (
    compile_for_inference,
    inference_channels_last,
    prepare_for_inference,
)

CPU = torch.device("cpu")


def make_generator(arch: str) -> torch.nn.Module:
    """A generator with published settings and BN statistics that are not the identity."""
    torch.manual_seed(0)  # every worker builds the same weights
    norm = "batch" if arch.startswith("unet") else "instance"
    net = build_generator(GeneratorConfig(arch=arch, norm=norm, dropout=False), 3, 3).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return net


VARIANTS = ("fp32", "fp32_reuse", "bf16_autocast", "bf16", "bf16_cl", "onnxruntime")


def variant(name: str, net: torch.nn.Module, arch: str, size: int) -> Callable:
    """A function translating a (1, 3, H, W) batch the way `name` does."""
    if name != "fp32":  # `pixmorph translate` keeps freed memory for reuse on a CPU
        reuse_freed_memory()
    if name in ("fp32", "fp32_reuse"):
        return net
    if name == "bf16_autocast":

        def autocast_bf16(x: torch.Tensor) -> torch.Tensor:
            with autocast(CPU, "bf16"):
                return net(x).float()

        return autocast_bf16
    if name in ("bf16", "bf16_cl"):
        return prepare_for_inference(net, "bf16", channels_last=name == "bf16_cl")
    if name == "bf16_compile":  # `pixmorph translate --compile`
        cl = inference_channels_last(net, "bf16", CPU)
        return compile_for_inference(prepare_for_inference(net, "bf16", channels_last=cl))
    if name == "onnxruntime":
        from pixmorph.inference.export import export_onnx, load_onnx

        cfg = build_config({"data": {"crop_size": size}, "model": {"generator": {"arch": arch}}})
        translator = Translator(Generator(net, 3, 3, size_multiple(arch)), cfg, None, CPU)
        folder = tempfile.mkdtemp(prefix="pixmorph-bench-")
        return load_onnx(export_onnx(translator, Path(folder) / "g.onnx")).generator.module
    raise ValueError(f"unknown variant {name}")


def worker(arch: str, name: str, size: int) -> None:
    """Worker process: build one variant and serve timed translations to the parent."""
    net = make_generator(arch)
    torch.manual_seed(1)
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.inference_mode():
        ref = copy.deepcopy(net)(x)
        fn = variant(name, net, arch, size)
        t0 = time.perf_counter()
        error = float((fn(x) - ref).abs().max())  # the first call: compiles, where it does
        serve(lambda i: fn(x), {"error": error, "first": time.perf_counter() - t0}, dict)


def run_arch(arch: str, args: argparse.Namespace, peak_bf16: float) -> None:
    """Time every variant in its own worker process, round-robin; print one table."""
    net = make_generator(arch)
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    with torch.inference_mode():
        flops = count_flops(lambda: net(x))
    names = list(VARIANTS) + (["bf16_compile"] if args.compile else [])
    if importlib.util.find_spec("onnxruntime") is None:
        print("(onnxruntime skipped: not installed; pip install 'pixmorph[onnx]')")
        names.remove("onnxruntime")
    options = ["--size", str(args.size), "--threads", str(args.threads)]
    workers = {n: [arch, n] for n in names}
    timings, infos, _ = interleaved_workers(__file__, workers, options, args.repeats, args.warmup)
    print(f"\n{arch} at {args.size}x{args.size}, batch 1, {flops / 1e9:.1f} GFLOP")
    print(
        f"{'variant':<16} {'ms':>8} {'best ms':>8} {'cpu ms':>8} {'img/s':>7} {'speedup':>8} "
        f"{'(best)':>7} {'GFLOP/s':>8} {'of bf16':>7} {'max |diff|':>10}"
    )
    base = timings["fp32"]
    for name, t in timings.items():
        print(
            f"{name:<16} {t.median * 1e3:>8.1f} {t.best * 1e3:>8.1f} {t.cpu_median * 1e3:>8.1f} "
            f"{1 / t.median:>7.2f} {base.median / t.median:>7.2f}x {base.best / t.best:>6.2f}x "
            f"{flops / t.median / 1e9:>8.1f} {flops / t.median / 1e9 / peak_bf16:>6.0%} "
            f"{infos[name]['error']:>10.4f}"
        )
    if "bf16_compile" in infos:
        print(
            f"bf16_compile: the first call (compiling) took {infos['bf16_compile']['first']:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archs", default="unet_256,resnet_9blocks")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    parser.add_argument("--worker", nargs=2, metavar=("ARCH", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(*args.worker, args.size)
        return
    line_buffered()
    print(machine_line())
    peak_fp32, peak_bf16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; 4096^2 matmul: fp32 {peak_fp32:.0f}, "
        f"bf16 {peak_bf16:.0f} GFLOP/s"
    )
    for arch in args.archs.split(","):
        run_arch(arch, args, peak_bf16)


if __name__ == "__main__":
    main()
