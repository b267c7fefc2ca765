"""`pixmorph train`: train a method from a recipe, flags and key=value overrides."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pixmorph.checkpoint import DiskFullError
from pixmorph.commands.console import TrainProgress
from pixmorph.config import (
    Config,
    load_size_for,
    merge,
    parse_overrides,
    read_yaml,
    set_dotted,
    to_dict,
)
from pixmorph.errors import ConfigError
from pixmorph.interop.weights import init_settings
from pixmorph.methods.base import Flag
from pixmorph.methods.registry import METHODS, get_method
from pixmorph.methods.settings import build_config
from pixmorph.training.lock import RunLockedError
from pixmorph.training.trainer import Trainer, TrainingInterrupted
from pixmorph.training.watch import NonFiniteError

RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model",
        description="Train a model. Settings: defaults < RECIPE < flags < key=value overrides. "
        "Any setting can be overridden, e.g. train.lr=1e-4 model.generator.norm=instance.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("items", nargs="*", metavar="[RECIPE.yaml] [key=value ...]")
    p.add_argument("--method", choices=sorted(METHODS), help="method to train")
    p.add_argument("--data", help="folder of images, or a root holding train/ (and test/ or val/)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="which half is the input")
    p.add_argument("--steps", type=int, help="total training steps (with --resume: a new total)")
    p.add_argument(
        "--minutes",
        type=float,
        help="train for this many wall-clock minutes instead of --steps (the LR schedule spans "
        "them; with --resume: a new total)",
    )
    p.add_argument("--size", type=int, help="training crop size (load size scales with it)")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--out", help="run folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument(
        "--init-generator",
        metavar="FILE",
        help="start the generator from these weights (a pixmorph checkpoint or a "
        "pix2pix/CycleGAN state dict); generator settings not given are read off the file",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (runs torchrun for you)",
    )
    for flag in method_flags().values():
        p.add_argument(
            flag.option, type=flag.type, choices=flag.choices, help=f"{flag.help} ({flag.key})"
        )
    p.set_defaults(run=run)


def method_flags() -> dict[str, Flag]:
    """The flags the registered methods declare, by option; one option means one setting."""
    flags: dict[str, Flag] = {}
    for cls in METHODS.values():
        for flag in cls.flags:
            known = flags.setdefault(flag.option, flag)
            if known.key != flag.key:
                raise ConfigError(
                    f"{flag.option} stands for {known.key} and for {flag.key} in two methods; "
                    "a flag must mean one setting"
                )
    return flags


def dest(option: str) -> str:
    """argparse's attribute name for an option."""
    return option.lstrip("-").replace("-", "_")


def flag_tree(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the common flags stand for."""
    tree: dict[str, Any] = {}
    if args.method:
        tree["method"] = args.method
    if args.out:
        tree["out"] = args.out
    data: dict[str, Any] = {}
    if args.data:
        data["root"] = args.data
    if args.direction:
        data["direction"] = args.direction
    if args.size is not None:
        if args.size < 8:
            raise ConfigError(f"--size {args.size}: the crop size must be at least 8")
        data["crop_size"] = args.size
        data["load_size"] = load_size_for(args.size)
    if data:
        tree["data"] = data
    train: dict[str, Any] = {}
    if args.init_generator:
        train["init_generator"] = args.init_generator
    if args.steps is not None:
        train["steps"] = args.steps
    if args.batch_size is not None:
        train["batch_size"] = args.batch_size
    if args.minutes is not None:
        train["time_budget"] = args.minutes
    if train:
        tree["train"] = train
    for flag in method_flags().values():
        value = getattr(args, dest(flag.option), None)
        if value is not None:
            set_dotted(tree, flag.key, value)
    return tree


def split_items(items: list[str]) -> tuple[str | None, list[str]]:
    """The optional recipe path (first item) and the key=value overrides."""
    recipe = None
    overrides = []
    for i, item in enumerate(items):
        if "=" not in item and item.lower().endswith(RECIPE_SUFFIXES) and i == 0:
            recipe = item
        elif "=" not in item:
            raise ConfigError(
                f"{item!r} is neither a recipe file (.yaml) given first nor a key=value override"
            )
        else:
            overrides.append(item)
    return recipe, overrides


def without_nproc(argv: list[str]) -> list[str]:
    """The command line minus the --nproc option, for the worker processes."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def launch(args: argparse.Namespace) -> int:
    """Re-run this command under torchrun with --nproc processes."""
    if args.nproc < 1:
        raise ConfigError("--nproc must be at least 1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
        "-m",
        "pixmorph",
        *without_nproc(args.argv),
    ]
    code = subprocess.call(cmd)
    if code:
        print(
            f"pixmorph train: a worker process failed (exit {code}); see the messages above",
            file=sys.stderr,
        )
    return code


def init_settings_under(tree: dict[str, Any]) -> dict[str, Any]:
    """The generator settings a train.init_generator file shows, for a method that has them."""
    path = tree.get("train", {}).get("init_generator")
    method_cls = get_method(tree.get("method", Config.method))
    if not path or "generator" not in {f.name for f in dataclasses.fields(method_cls.Config)}:
        return {}
    return init_settings(path)


def run(args: argparse.Namespace) -> int:
    if args.nproc != 1 and "WORLD_SIZE" not in os.environ:
        return launch(args)
    recipe, override_items = split_items(args.items)
    user = merge(flag_tree(args), parse_overrides(override_items))
    if args.resume:
        if recipe:
            raise ConfigError(
                "--resume continues a run with its saved config; do not give a recipe"
            )
        if args.init_generator:
            raise ConfigError("--init-generator starts a new run; --resume continues one")
        trainer = Trainer.resume(args.resume, user)
    else:
        tree = merge(read_yaml(recipe), user) if recipe else user
        tree = merge(init_settings_under(tree), tree)
        if "out" not in tree:
            tree["out"] = str(Path("runs") / str(tree.get("method", Config.method)))
        trainer = Trainer(build_config(tree))
    cfg = trainer.cfg
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    start = int(trainer._resume_from["step"]) if trainer._resume_from else 0
    main_rank = trainer.dist.is_main
    if start >= cfg.train.steps:
        if main_rank:
            print(
                f"nothing to do: {cfg.out} is at step {start} already and --steps is "
                f"{cfg.train.steps}; give --steps above {start} to train on",
                file=sys.stderr,
            )
            print(f"checkpoint: {trainer.run.latest}")
        return 0
    progress = TrainProgress(start, cfg.train.steps, enabled=main_rank and not args.no_progress)
    trainer.progress = progress
    try:
        run_dir = trainer.fit()
    except (NonFiniteError, DiskFullError, RunLockedError) as e:
        progress.close()
        print(f"pixmorph train: error: {e}{kept(trainer)}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        progress.close()
        print(
            f"stopped at step {e.step}; continue with: pixmorph train --resume {cfg.out}",
            file=sys.stderr,
        )
        return 130
    progress.close()
    if not main_rank:
        return 0
    print(f"run folder: {run_dir}")
    print(f"checkpoint: {Path(run_dir) / 'checkpoints' / 'latest.pt'}")
    return 0


def kept(trainer: Trainer) -> str:
    """Where the last good checkpoint is, for an error that stopped training."""
    if not trainer.run.latest.exists():
        return ""
    return f"; the last good checkpoint is {trainer.run.latest} (continue with --resume)"
