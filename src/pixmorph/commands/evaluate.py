"""`pixmorph evaluate`: paired metrics and FID/KID realism of a trained model on a test set."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

from pixmorph.checkpoint import resolve_path
from pixmorph.commands.console import bar
from pixmorph.commands.evaluate_samples import add_sample_flags, run_sample_evaluation
from pixmorph.data.folders import eval_folder
from pixmorph.data.images import list_images
from pixmorph.errors import ConfigError
from pixmorph.evaluation.fid import Realism, evaluate_unpaired, unpaired_folders
from pixmorph.evaluation.inception_weights import build_feature_net
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.inference.generation import generates
from pixmorph.inference.loading import load_generator
from pixmorph.methods.registry import get_method


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="L1/PSNR/SSIM on paired data, FID/KID on paired or unpaired data",
        description="Paired data (A|B files): L1, PSNR and SSIM per image, plus FID/KID of the "
        "outputs against the targets with --fid/--kid. Unpaired data (testA/ testB/, or "
        "--inputs and --real): translate the inputs and compare them with the real images "
        "by FID/KID. Methods add their own figures and baselines: super-resolution models "
        "take a folder of HR images and add Y-channel PSNR/SSIM next to bicubic upscaling.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--data", help="paired folder or root with test/ or val/; or unpaired root")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="default: the trained direction")
    p.add_argument(
        "--mode",
        choices=["auto", "paired", "unpaired"],
        default="auto",
        help="auto: unpaired when --real is given or the root has testA/ and testB/",
    )
    p.add_argument("--inputs", help="unpaired: folder of images to translate")
    p.add_argument("--real", help="unpaired: folder of real target-domain images")
    p.add_argument("--fid", action="store_true", help="Frechet Inception Distance")
    p.add_argument("--kid", action="store_true", help="Kernel Inception Distance")
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="Inception-v3 2015-12-05 weights (TorchScript .pt or .safetensors); default: "
        "$PIXMORPH_CACHE, ~/.cache/pixmorph, or the pixmorph[fid] extra",
    )
    p.add_argument(
        "--feature-net",
        choices=["inception", "random"],
        default="inception",
        help="random: a seeded small CNN for smoke tests (numbers not comparable to FID)",
    )
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--out", help="report folder (default: next to the checkpoint)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-images", action="store_true", help="metrics only, no image files")
    add_sample_flags(p)
    p.set_defaults(run=run)


def default_out(checkpoint: str, folder: Path) -> Path:
    """`RUN/eval_<data folder name>` for a run; beside the file for a checkpoint file."""
    ckpt = resolve_path(checkpoint)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    split = folder.name.startswith(("test", "val"))
    return run / (f"eval_{folder.parent.name}_{folder.name}" if split else f"eval_{folder.name}")


def paired_means(m: dict[str, float]) -> str:
    """L1, PSNR, SSIM and a method's own figures on one line."""
    return f"L1 {m['l1']:.4f}  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}" + "".join(
        f"  {k} {v:.4g}" for k, v in m.items() if k not in ("l1", "psnr", "ssim")
    )


def unpaired_sources(args: argparse.Namespace, direction: str) -> tuple[Path, Path] | None:
    """(inputs, real) when this evaluation is unpaired, else None."""
    if args.mode == "paired":
        return None
    if args.inputs or args.real:
        if not (args.inputs and args.real):
            raise ConfigError("unpaired evaluation needs both --inputs DIR and --real DIR")
        return Path(args.inputs), Path(args.real)
    found = unpaired_folders(args.data, direction) if args.data else None
    if found is None and args.mode == "unpaired":
        raise ConfigError(
            "--mode unpaired: give --inputs DIR and --real DIR, or --data ROOT holding testA/ "
            "and testB/"
        )
    return found


def run(args: argparse.Namespace) -> int:
    if generates(args.checkpoint):  # a generator: its samples against real images
        return run_sample_evaluation(args)
    if not args.data and not (args.inputs and args.real):
        raise ConfigError("give --data DIR (paired or unpaired root), or --inputs and --real")
    translator = load_generator(args.checkpoint, args.direction, args.device)
    cfg = translator.config
    direction = args.direction or cfg.data.direction
    sources = unpaired_sources(args, direction)
    realism = None
    if args.fid or args.kid:
        # loaded before any translation, so missing weights fail at once
        net = build_feature_net(args.feature_net, args.inception_weights, translator.device)
        realism = Realism(
            net, args.fid, args.kid, args.kid_subsets, args.kid_subset_size, args.batch_size
        )
    if sources is not None:
        if realism is None:
            raise ConfigError(
                "unpaired data has no per-image targets: add --fid and/or --kid "
                "(or --mode paired for an aligned folder)"
            )
        inputs, real = sources
        out = Path(args.out) if args.out else default_out(args.checkpoint, inputs)
        with bar(len(list_images(inputs)), "evaluate") as progress:
            summary = evaluate_unpaired(
                translator, inputs, real, realism, out, not args.no_images, progress.update
            )
    else:
        if args.direction:
            cfg.data.direction = args.direction
        method_cls = get_method(cfg.method)
        dataset = method_cls.make_dataset(cfg, train=False, root=args.data)
        out = Path(args.out) if args.out else default_out(args.checkpoint, eval_folder(args.data))
        with bar(len(dataset), "evaluate") as progress:
            summary = evaluate_paired(
                translator,
                dataset,
                out,
                args.batch_size,
                not args.no_images,
                progress.update,
                realism,
                extra_metrics=partial(method_cls.eval_metrics, cfg),
                baseline=method_cls.eval_baseline(cfg),
            )
        print(f"{summary['count']} images: {paired_means(summary['mean'])}")
        if "baseline" in summary:
            b = summary["baseline"]
            print(f"{b['name']:>{len(str(summary['count'])) + 7}}: {paired_means(b['mean'])}")
    r = summary.get("realism")
    if r:
        shown = [f"FID {r['fid']:.3f}"] if "fid" in r else []
        if "kid" in r:
            shown.append(f"KID {r['kid']:.5f} +- {r['kid_std']:.5f}")
        print(f"{r['count_fake']} translated vs {r['count_real']} real: {'  '.join(shown)}")
    print(f"report: {out / 'index.html'}  metrics: {out / 'metrics.json'}")
    return 0
