"""A tiny trained MUNIT on the synthetic flood set, for the multimodal translation tests."""

from __future__ import annotations

from pathlib import Path

from pixmorph.data.synth_flood import write_flood
from pixmorph.methods.munit import MUNIT
from pixmorph.methods.settings import build_config
from pixmorph.training.trainer import Trainer


def make_munit_run(root: Path, steps: int = 2) -> tuple[Path, Path]:
    """(flood data root, run folder) of a MUNIT trained `steps` steps at 32 px with 8 filters."""
    data, run = root / "flood", root / "run"
    write_flood(data, n=12, size=32, seed=0, test_fraction=0.25, sim_fraction=0.0)
    tree = {
        "method": "munit",
        "out": str(run),
        "data": {"root": str(data), "crop_size": 32, "load_size": 36},
        "train": {
            "steps": steps,
            "batch_size": 2,
            "log_every": 1,
            "sample_every": steps,
            "checkpoint_every": steps,
            "num_samples": 2,
            "seed": 0,
            "precision": "fp32",
            "compile": False,
        },
        "model": MUNIT.tiny_settings["model"],
    }
    trainer = Trainer(build_config(tree))
    trainer.fit(trainer.build())
    return data, run
