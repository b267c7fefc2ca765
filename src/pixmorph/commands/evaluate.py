"""`pixmorph evaluate`: paired metrics and FID/KID realism of a trained model on a test set."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

from pixmorph.checkpoint import resolve_path
from pixmorph.commands.console import bar
from pixmorph.commands.evaluate_samples import add_sample_flags, run_sample_evaluation
from pixmorph.commands.inference_args import add_ensemble_flag
from pixmorph.data.folders import eval_folder
from pixmorph.data.images import list_images
from pixmorph.errors import ConfigError
from pixmorph.evaluation.diversity import diversity, diversity_line
from pixmorph.evaluation.fid import Realism, evaluate_unpaired, folder_images, unpaired_folders
from pixmorph.evaluation.flood import evaluate_flood, flood_files, flood_line
from pixmorph.evaluation.inception_weights import build_feature_net
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.evaluation.summary import write_summary
from pixmorph.inference.generation import generates
from pixmorph.inference.loading import load_generator
from pixmorph.inference.styles import require_multimodal
from pixmorph.inference.translator import Translator
from pixmorph.methods.registry import get_method
from pixmorph.nets.segmenter import load_segmenter


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="L1/PSNR/SSIM on paired data, FID/KID on paired or unpaired data",
        description="Paired data (A|B files): L1, PSNR and SSIM per image, plus FID/KID of the "
        "outputs against the targets with --fid/--kid. Unpaired data (testA/ testB/, or "
        "--inputs and --real): translate the inputs and compare them with the real images "
        "by FID/KID. Methods add their own figures and baselines: super-resolution models "
        "take a folder of HR images and add Y-channel PSNR/SSIM next to bicubic upscaling. "
        "Multimodal models (MUNIT): --styles K adds the diversity of K random styles per input. "
        "--mode flood scores dry -> flooded translation on a flood set (see docs/evaluation.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--data", help="paired folder or root with test/ or val/; or unpaired root")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="default: the trained direction")
    p.add_argument(
        "--mode",
        choices=["auto", "paired", "unpaired", "flood"],
        default="auto",
        help="auto: unpaired when --real is given or the root has testA/ and testB/; flood: "
        "keep/water figures on a flood set (testA/ testB/ testmaskA/, by stem)",
    )
    p.add_argument(
        "--segmenter",
        metavar="FILE",
        help="flood: a TorchScript segmenter (image in [-1, 1] -> logits); adds the agreement "
        "of source and output labels outside the mask",
    )
    p.add_argument(
        "--styles",
        type=int,
        metavar="K",
        help="multimodal models: translate each input in K random styles and report their "
        "diversity (mean pairwise feature distance; a collapsed model scores 0)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the --styles codes; generators: sample i comes from seed + i",
    )
    add_ensemble_flag(p)
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


def diversity_inputs(args: argparse.Namespace, sources: tuple[Path, Path] | None) -> Path:
    """The folder whose images --styles translates: the unpaired inputs, or a flood testA/."""
    if args.mode == "flood":
        return Path(args.data) / "testA"
    if sources is None:
        raise ConfigError(
            "--styles applies to unpaired data and --mode flood (inputs to translate)"
        )
    return sources[0]


def flood_run(args: argparse.Namespace, translator: Translator, direction: str) -> dict[str, Any]:
    """`--mode flood`: keep/water figures (and segmenter agreement) of a flood set."""
    if not args.data:
        raise ConfigError(
            "--mode flood needs --data ROOT of a flood set (pixmorph data synth --flood)"
        )
    if direction != "AtoB":
        raise ConfigError("--mode flood scores dry -> flooded (A -> B): drop --direction BtoA")
    if args.fid or args.kid:
        raise ConfigError("--mode flood has no FID/KID: run --mode unpaired for them")
    segmenter = load_segmenter(args.segmenter, translator.device) if args.segmenter else None
    count = len(flood_files(args.data))  # a broken set fails here, before any translation
    out = Path(args.out) if args.out else default_out(args.checkpoint, Path(args.data) / "testA")
    with bar(count, "evaluate") as progress:
        summary = evaluate_flood(
            translator, args.data, out, not args.no_images, progress.update, segmenter
        )
    print(f"{summary['count']} scenes: {flood_line(summary['mean'])}")
    base = summary["baseline"]["mean"]
    print("identity (no flooding): " + "  ".join(f"{k} {v:.4g}" for k, v in base.items()))
    summary["out"] = out
    return summary


def check_styles(args: argparse.Namespace, translator: Translator) -> None:
    """Refuse --styles on a model without style codes, or with fewer than 2 styles."""
    if args.styles is None:
        return
    require_multimodal(translator, "--styles")
    if args.styles < 2:
        raise ConfigError(f"--styles {args.styles}: diversity needs at least 2 styles per input")


def run(args: argparse.Namespace) -> int:
    if generates(args.checkpoint):  # a generator: its samples against real images
        return run_sample_evaluation(args)
    if args.segmenter and args.mode != "flood":
        raise ConfigError("--segmenter applies to --mode flood")
    if args.mode == "flood":
        translator = load_generator(args.checkpoint, args.direction, args.device)
        translator.ensemble = args.ensemble
        check_styles(args, translator)
        summary = flood_run(args, translator, args.direction or translator.config.data.direction)
        out = summary.pop("out")
        if args.styles is not None:
            add_diversity(args, translator, summary, diversity_inputs(args, None), out)
        report_line(out)
        return 0
    if not args.data and not (args.inputs and args.real):
        raise ConfigError("give --data DIR (paired or unpaired root), or --inputs and --real")
    translator = load_generator(args.checkpoint, args.direction, args.device)
    translator.ensemble = args.ensemble
    check_styles(args, translator)
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
        if realism is None and args.styles is None:
            raise ConfigError(
                "unpaired data has no per-image targets: add --fid and/or --kid "
                "(or --mode paired for an aligned folder)"
            )
        inputs, real = sources
        out = Path(args.out) if args.out else default_out(args.checkpoint, inputs)
        if realism is not None:
            with bar(len(list_images(inputs)), "evaluate") as progress:
                summary = evaluate_unpaired(
                    translator, inputs, real, realism, out, not args.no_images, progress.update
                )
        else:
            summary = {"mode": "unpaired", "inputs": str(inputs), "real": str(real)}
    else:
        if args.styles is not None:
            diversity_inputs(args, None)  # paired data: refused with the reason
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
    if args.styles is not None and sources is not None:
        net = realism.net if realism else None
        add_diversity(args, translator, summary, sources[0], out, net)
    report_line(out)
    return 0


def report_line(out: Path) -> None:
    """Where the page (when one was written) and the figures are."""
    page = out / "index.html"
    print((f"report: {page}  " if page.is_file() else "") + f"metrics: {out / 'metrics.json'}")


def add_diversity(
    args: argparse.Namespace,
    translator: Translator,
    summary: dict[str, Any],
    inputs: Path,
    out: Path,
    net: Any = None,
) -> None:
    """Score --styles K diversity on `inputs`, print it and add it to out/metrics.json."""
    net = net or build_feature_net(args.feature_net, args.inception_weights, translator.device)
    names = [p.stem for p in list_images(inputs)]
    images = zip(names, folder_images(inputs, translator.in_channels), strict=True)
    with bar(len(names), "diversity") as progress:
        d = diversity(translator, images, net, args.styles, args.seed, progress.update)
    print(diversity_line(d))
    summary["diversity"] = d
    write_summary(summary, out)
