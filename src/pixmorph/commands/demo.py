"""`pixmorph demo`: the main job end to end on built-in data, in a few minutes on a CPU."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from pixmorph.commands.console import TrainProgress
from pixmorph.config import load_size_for
from pixmorph.data import synth
from pixmorph.data.aligned import split_pair
from pixmorph.data.images import list_images, open_image
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.inference.loading import load_generator
from pixmorph.inference.translator import Translator, translate
from pixmorph.methods.settings import build_config
from pixmorph.training.trainer import Trainer


def demo_recipe(out: Path, data: Path, steps: int, size: int) -> dict[str, Any]:
    """A small pix2pix: label maps -> renderings (the right half is the input, so BtoA)."""
    return {
        "method": "pix2pix",
        "out": str(out),
        "data": {
            "root": str(data),
            "direction": "BtoA",
            "crop_size": size,
            "load_size": load_size_for(size),
            "cache": True,
        },
        "train": {
            "steps": steps,
            "batch_size": 4,
            "lr": 2e-4,
            "log_every": 10,
            "sample_every": max(1, steps // 5),
            "checkpoint_every": max(1, steps // 4),
            "seed": 0,
            # a few minutes' run: timing speed candidates would cost more than it saves
            "calibrate": False,
        },
        "model": {"generator": {"ngf": 32}, "discriminator": {"ndf": 32}},
    }


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="generate data, train a small pix2pix, evaluate and translate (a few minutes)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="demo", help="folder for data, run and results")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n", type=int, default=300, help="synthetic images (10%% held out)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = Path(args.out)
    data = out / "data"
    if data.exists() and any(data.iterdir()):
        print(f"[1/5] using the synthetic dataset in {data}")
    else:
        synth.write_paired(data, n=args.n, size=args.size, seed=0)
        print(f"[1/5] wrote a synthetic paired dataset to {data}")
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo's own run: start fresh every time
    cfg = build_config(demo_recipe(run_dir, data, args.steps, args.size))
    trainer = Trainer(cfg)
    method = trainer.build()
    test_set = trainer.method_cls.make_dataset(cfg, train=False)

    method.eval()
    untrained = Translator(method.inference_generator(), cfg, None, trainer.device)
    before = evaluate_paired(untrained, test_set, save_images=False)["mean"]
    method.train()
    print(
        f"[2/5] untrained model on {len(test_set)} held-out images: "
        f"PSNR {before['psnr']:.2f} dB, SSIM {before['ssim']:.4f}"
    )

    progress = TrainProgress(0, cfg.train.steps, enabled=not args.no_progress)
    trainer.progress = progress
    trainer.fit(method)
    progress.close()
    print(f"[3/5] trained {cfg.train.steps} steps into {run_dir}")

    translator = load_generator(run_dir)
    report = out / "evaluation"
    after = evaluate_paired(translator, test_set, report)["mean"]
    print(
        f"[4/5] trained model: PSNR {after['psnr']:.2f} dB, SSIM {after['ssim']:.4f} "
        f"(report: {report / 'index.html'})"
    )

    translated = out / "translated"
    translated.mkdir(parents=True, exist_ok=True)
    files = list_images(data / "test")[:8]
    labels = [split_pair(open_image(f))[1] for f in files]  # right half: the label map
    for f, img in zip(files, translate(translator, labels), strict=True):
        img.save(translated / f"{f.stem}.png")
    print(f"[5/5] translated {len(files)} label maps into {translated}")

    print()
    print(f"validation PSNR: {before['psnr']:.2f} dB -> {after['psnr']:.2f} dB")
    print(f"validation SSIM: {before['ssim']:.4f} -> {after['ssim']:.4f}")
    print(f"samples during training: {run_dir / 'samples'}")
    print(f"checkpoint: {run_dir / 'checkpoints' / 'latest.pt'}")
    print(f"total time: {time.perf_counter() - t0:.0f} s")
    print(f"try it on your own photos: pixmorph serve {run_dir}  (open http://127.0.0.1:8000/)")
    return 0
