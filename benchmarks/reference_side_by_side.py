"""pixmorph next to a reference implementation's own train.py: seconds per training step.

python benchmarks/reference_side_by_side.py --reference CHECKOUT --reference-python PY \
    --data ../shared/data/facades [--cases pix2pix_256,cyclegan_128] [--isa avx2] [--rounds 2]

CHECKOUT is a checkout of the reference pix2pix/CycleGAN code (its train.py and options), PY a
Python that can run it (it needs torchvision, which pixmorph does not). Both programs are run as
a user runs them, each in a process of its own, from the same images:
- pix2pix unet_256 @256, batch 1 (label -> photo, BtoA), on an aligned A|B folder;
- CycleGAN resnet_9blocks @128 (load 143), batch 1, on trainA/trainB made from the same folder
  by `pixmorph data unpair`.
s/step is (T(long) - T(short)) / (long - short): start-up, data checks and the final save cancel
out. The reference is given a dataset of exactly N images and one epoch (N steps);
pixmorph gets `--steps N` with its defaults (every speed setting on `auto`, calibrated as a run
of 1000+ steps is: an untimed first run fills the calibration cache, the timed ones read it),
except `--precision fp32`, which pins pixmorph to fp32 where `auto` would pick bf16.
The fp32 matmul peak is measured in the same run, and pixmorph's GFLOP/s (FLOPs of one fp32
step counted by torch) is given as a share of it. `--isa avx2` caps torch's, oneDNN's and MKL's
kernels for both programs (the software path of an AVX2-only CPU such as AMD Zen 3).
Each round runs short and long of both programs in turn (reference first in odd rounds,
pixmorph first in even ones); a line is printed, flushed, after every run. Measured on the
2-core Intel Xeon with `--isa avx2` (fp32): about 5 minutes for pix2pix_256 and 9 for
cyclegan_128 per round, pixmorph's one-time calibration included (14 minutes for both).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from measure import count_flops, line_buffered, machine_line, matmul_peak
from train_speed import CASES as SPEED_CASES
from train_speed import ISA_ENV, SETTINGS, build, random_batch

from pixmorph.data.tools.unpair import unpair


@dataclass(frozen=True)
class SideCase:
    """One comparison: the reference's options, pixmorph's, and the step counts."""

    reference: tuple[str, ...]
    pixmorph: tuple[str, ...]
    unpaired: bool
    short: int
    long: int


CASES = {
    "pix2pix_256": SideCase(
        ("--model", "pix2pix", "--direction", "BtoA", "--netG", "unet_256"),
        ("--method", "pix2pix", "--direction", "BtoA", "--size", "256"),
        unpaired=False,
        short=20,
        long=50,
    ),
    "cyclegan_128": SideCase(
        (
            "--model",
            "cycle_gan",
            "--netG",
            "resnet_9blocks",
            "--load_size",
            "143",
            "--crop_size",
            "128",
        ),  # fmt: skip
        ("--method", "cyclegan", "--size", "128", "model.generator.arch=resnet_9blocks"),
        unpaired=True,
        short=10,
        long=30,
    ),
}


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Wall seconds of one program run; its output goes to `log`; a failure stops the benchmark."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    if code:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        sys.exit(
            f"{' '.join(cmd[:3])} ... exited with {code}; last lines of {log}:\n" + "\n".join(tail)
        )
    return seconds


def subset(source: Path, n: int, out: Path) -> Path:
    """A folder of the first n images of `source` (symlinks), so the reference's epoch is n steps."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < n:
        sys.exit(f"{source} has {len(files)} images; the benchmark needs {n}")
    for f in files[:n]:
        (out / f.name).symlink_to(f.resolve())
    return out


def train_folder(data: Path) -> Path:
    """The folder of training images under a data root (root/train or the root itself)."""
    return data / "train" if (data / "train").is_dir() else data


def reference_cmd(args: argparse.Namespace, case: SideCase, root: Path, run: Path) -> list[str]:
    return [
        args.reference_python, "train.py", "--dataroot", str(root), "--name", "bench",
        "--checkpoints_dir", str(run), *case.reference, "--n_epochs", "1", "--n_epochs_decay", "0",
        "--batch_size", "1", "--num_threads", "0", "--no_html", "--print_freq", "1000000",
        "--display_freq", "1000000", "--save_latest_freq", "1000000", "--save_epoch_freq", "1000",
    ]  # fmt: skip


def pixmorph_cmd(args: argparse.Namespace, case: SideCase, root: Path, steps: int, run: Path):
    cmd = [sys.executable, "-m", "pixmorph", "train", *case.pixmorph, "--data", str(root)]
    # calibrate=true: what a run of 1000+ steps does on a CPU class whose settings were not
    # measured; the choice comes from the cache that the untimed first run filled
    cmd += ["--steps", str(steps), "--out", str(run), "--no-progress", "train.calibrate=true"]
    return cmd + (["train.precision=fp32"] if args.precision == "fp32" else [])


def step_gflop(name: str) -> float:
    """GFLOP of one fp32 training step of pixmorph's model for the case."""
    case = SPEED_CASES[name]
    method = build(case, dict(SETTINGS["baseline"]), "cpu")
    return count_flops(lambda: method.train_step(random_batch(case.size, method.device), 0)) / 1e9


def run_case(name: str, args: argparse.Namespace, work: Path, env: dict[str, str], peak: float):
    case = CASES[name]
    source = train_folder(Path(args.data))
    print(f"\n{name}: counting FLOPs", flush=True)
    gflop = step_gflop(name)
    short, long = args.steps or (case.short, case.long)
    times: dict[tuple[str, int], list[float]] = {}
    roots = {steps: work / f"{name}_{steps}" / "data" for steps in (short, long)}
    for steps, data in roots.items():  # both programs read the same `steps` images
        if case.unpaired:
            unpair(subset(source, 2 * steps, data.parent / "src"), data, seed=0)
            for side in ("trainA", "trainB"):  # exactly `steps` images a side: one epoch each
                for f in sorted((data / side).iterdir())[steps:]:
                    f.unlink()
        else:
            subset(source, steps, data / "train")
    warm = work / f"run_{name}_calibrate"
    print("  pixmorph: calibrating its auto settings for this CPU class (untimed, cached)")
    run_timed(pixmorph_cmd(args, case, roots[short], 1, warm), Path.cwd(), env, work / "cal.log")
    lines = (work / "cal.log").read_text().splitlines()
    plan = [line for line in lines if line.startswith("speed: precision")]
    print(f"  {plan[-1] if plan else 'pixmorph printed no speed line'}", flush=True)
    for r in range(args.rounds):
        order = ["reference", "pixmorph"] if r % 2 == 0 else ["pixmorph", "reference"]
        for steps, data in roots.items():
            for who in order:
                run = work / f"run_{name}_{who}_{steps}_{r}"
                if who == "reference":
                    cmd = reference_cmd(args, case, data, run)
                    cwd = Path(args.reference)
                else:
                    cmd, cwd = pixmorph_cmd(args, case, data, steps, run), Path.cwd()
                seconds = run_timed(cmd, cwd, env, work / f"{run.name}.log")
                times.setdefault((who, steps), []).append(seconds)
                print(f"  round {r + 1}: {who:<9} {steps:>3} steps {seconds:7.1f} s", flush=True)
                shutil.rmtree(run, ignore_errors=True)
    print(
        f"\n{name}: batch 1, {gflop:.1f} GFLOP per fp32 step; fp32 matmul peak {peak:.0f} GFLOP/s"
    )
    print(
        f"{'round':<6} {'reference s/step':>17} {'pixmorph s/step':>16} {'ratio':>7} {'of peak':>8}"
    )
    rows = []
    for r in range(args.rounds):
        ref = (times[("reference", long)][r] - times[("reference", short)][r]) / (long - short)
        pm = (times[("pixmorph", long)][r] - times[("pixmorph", short)][r]) / (long - short)
        rows.append((ref, pm))
        print(f"{r + 1:<6} {ref:>17.3f} {pm:>16.3f} {ref / pm:>6.2f}x {gflop / pm / peak:>8.0%}")
    if len(rows) > 1:
        ref, pm = (statistics.median(col) for col in zip(*rows, strict=True))
        ratio = statistics.median(a / b for a, b in rows)
        print(f"{'median':<6} {ref:>17.3f} {pm:>16.3f} {ratio:>6.2f}x {gflop / pm / peak:>8.0%}")
    print("ratio: reference s/step over pixmorph s/step (above 1: pixmorph is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reference", required=True, help="checkout holding the reference train.py"
    )
    parser.add_argument("--reference-python", required=True, help="a Python that runs it")
    parser.add_argument("--data", required=True, help="aligned A|B folder (or root with train/)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}"
    )
    parser.add_argument("--isa", choices=sorted(ISA_ENV), help="cap the kernels of both programs")
    parser.add_argument(
        "--precision", choices=["auto", "fp32"], default="auto", help="pixmorph's precision"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--steps",
        type=lambda v: tuple(int(x) for x in v.split(",")),
        metavar="SHORT,LONG",
        help="step counts of the two runs (default: 20,50 for pix2pix, 10,30 for CycleGAN)",
    )
    parser.add_argument("--threads", type=int, default=2, help="OMP threads of both programs")
    args = parser.parse_args()
    if not (Path(args.reference) / "train.py").is_file():
        parser.error(f"--reference {args.reference}: no train.py there")
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": "disabled"}
    if args.isa:
        env.update(ISA_ENV[args.isa])
        if any(os.environ.get(k) != v for k, v in ISA_ENV[args.isa].items()):
            # this process measures the peak: start again with the same caps
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    torch.set_num_threads(args.threads)
    line_buffered()
    print(machine_line())
    peak = matmul_peak(torch.float32)
    print(f"fp32 matmul peak (4096^2, {args.threads} threads): {peak:.0f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="pixmorph_side_") as tmp:
        for name in args.cases.split(","):
            run_case(name, args, Path(tmp), env, peak)


if __name__ == "__main__":
    main()
