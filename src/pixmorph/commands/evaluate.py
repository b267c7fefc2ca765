"""`pixmorph evaluate`: metrics of a trained model on a paired test folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.checkpoint import resolve_path
from pixmorph.commands.console import bar
from pixmorph.data.folders import eval_folder
from pixmorph.evaluate import evaluate_paired
from pixmorph.infer import load_generator
from pixmorph.methods.registry import get_method


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="L1, PSNR and SSIM of a model on a paired folder",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--data", required=True, help="aligned folder, or a root holding test/ or val/")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="default: the trained direction")
    p.add_argument("--out", help="report folder (default: next to the checkpoint)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-images", action="store_true", help="metrics only, no image files")
    p.set_defaults(run=run)


def default_out(checkpoint: str, data: str) -> Path:
    """`RUN/eval_<data folder name>` for a run; beside the file for a checkpoint file."""
    ckpt = resolve_path(checkpoint)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    folder = eval_folder(data)
    return (
        run / f"eval_{folder.parent.name}_{folder.name}"
        if folder.name in ("test", "val")
        else (run / f"eval_{folder.name}")
    )


def run(args: argparse.Namespace) -> int:
    translator = load_generator(args.checkpoint, args.direction, args.device)
    cfg = translator.config
    if args.direction:
        cfg.data.direction = args.direction
    method_cls = get_method(cfg.method)
    dataset = method_cls.make_dataset(cfg, train=False, root=args.data)
    out = Path(args.out) if args.out else default_out(args.checkpoint, args.data)
    with bar(len(dataset), "evaluate") as progress:
        summary = evaluate_paired(
            translator,
            dataset,
            out,
            args.batch_size,
            not args.no_images,
            progress.update,
            extra_metrics=method_cls.eval_metrics,
        )
    m = summary["mean"]
    print(
        f"{summary['count']} images: L1 {m['l1']:.4f}  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}"
        + "".join(f"  {k} {v:.4g}" for k, v in m.items() if k not in ("l1", "psnr", "ssim"))
    )
    print(f"report: {out / 'index.html'}  metrics: {out / 'metrics.json'}")
    return 0
