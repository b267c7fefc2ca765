"""Shared fixtures: tiny built-in datasets and tiny configs, so every test runs in seconds."""

from __future__ import annotations

import os

# OpenMP threads that sleep instead of spinning while they wait: on a shared or busy machine a
# spinning 2-thread pool makes small training steps many times slower. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402
from typing import Any

import pytest
import torch

from pixmorph.config import Config, merge
from pixmorph.data import synth
from pixmorph.methods.settings import build_config

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def paired_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small aligned dataset (photo | label), 32x32 halves, with train/ and test/."""
    root = tmp_path_factory.mktemp("paired32")
    synth.write_paired(root, n=48, size=32, seed=0, test_fraction=1 / 6)
    return root


@pytest.fixture(scope="session")
def unpaired_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small unpaired dataset (trainA/ trainB/ testA/ testB/ test/), 32x32."""
    root = tmp_path_factory.mktemp("unpaired32")
    synth.write_unpaired(root, n=48, size=32, seed=0, test_fraction=1 / 6)
    return root


def tiny_tree(root: Path | str, out: Path | str, **overrides: Any) -> dict[str, Any]:
    """A pix2pix recipe at 32x32 with 8-16 filters: a training step takes milliseconds."""
    tree = {
        "method": "pix2pix",
        "out": str(out),
        "data": {"root": str(root), "direction": "BtoA", "crop_size": 32, "load_size": 36},
        "train": {
            "steps": 4,
            "batch_size": 2,
            "log_every": 1,
            "sample_every": 2,
            "checkpoint_every": 2,
            "seed": 0,
        },
        "model": {"generator": {"ngf": 8}, "discriminator": {"ndf": 8}},
    }
    return merge(tree, overrides)


def tiny_config(root: Path | str, out: Path | str, **overrides: Any) -> Config:
    """tiny_tree built into a resolved Config."""
    return build_config(tiny_tree(root, out, **overrides))
