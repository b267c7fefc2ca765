"""`pixmorph evaluate` of a generator checkpoint: FID, KID, precision and recall of its samples
against real images (by default the training folder of its run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixmorph.commands.console import bar
from pixmorph.data.folders import train_folder
from pixmorph.errors import ConfigError
from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.generative import evaluate_sampler, headline
from pixmorph.evaluation.inception_weights import build_feature_net
from pixmorph.evaluation.summary import write_summary
from pixmorph.inference.generation import load_sampler
from pixmorph.methods.registry import get_method


def add_sample_flags(p: Any) -> None:
    g = p.add_argument_group("generators (StyleGAN): samples against real images")
    g.add_argument("--samples", type=int, default=1000, help="images to generate")
    g.add_argument("--truncation", type=float, default=1.0, help="psi of the samples")
    g.add_argument("--pr-k", type=int, default=3, help="k of the precision/recall manifolds")


def run_sample_evaluation(args: argparse.Namespace) -> int:
    model = load_sampler(args.checkpoint, args.device)
    cfg = model.config
    if args.samples < 4:
        raise ConfigError(f"--samples {args.samples}: generate at least 4 images")
    real_dir = Path(args.real or args.data or train_folder(cfg.data.root))
    # the real images prepared as in training, without random flips (resized to its size)
    dataset = get_method(cfg.method).make_dataset(cfg, train=False, root=str(real_dir))
    count = len(dataset)
    real = (dataset[i]["image"] for i in range(count))
    net = build_feature_net(args.feature_net, args.inception_weights, model.device)
    # without --fid/--kid a generator gets both: there is nothing else to report
    fid, kid = (args.fid, args.kid) if (args.fid or args.kid) else (True, True)
    subset = min(args.kid_subset_size, args.samples, count)
    realism = Realism(net, fid, kid, args.kid_subsets, subset, args.batch_size)
    with bar(1, "evaluate") as progress:
        scores = evaluate_sampler(
            model.sampler, real, realism, args.samples, args.seed, args.truncation, args.pr_k
        )
        progress.update(1)
    out = Path(args.out) if args.out else run_folder(args.checkpoint) / "eval_samples"
    summary = {
        "mode": "samples",
        "count": args.samples,
        "real": str(real_dir),
        "checkpoint_step": model.step,
        "mean": headline(scores),
        "realism": scores,
    }
    path = write_summary(summary, out)
    shown = "  ".join(f"{k} {v:.4g}" for k, v in headline(scores).items())
    print(f"{args.samples} samples vs {scores['count_real']} real ({real_dir}): {shown}")
    print(f"metrics: {path}")
    return 0


def run_folder(checkpoint: str) -> Path:
    p = Path(checkpoint)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent
