"""StyleGAN learns: the tiny recipe's samples move towards the data, as train.eval_every records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixmorph.config import merge, read_yaml
from pixmorph.data import synth
from pixmorph.methods.settings import build_config
from pixmorph.methods.stylegan import StyleGAN
from pixmorph.training.sample_eval import SampleEval, build_evaluator
from pixmorph.training.trainer import Trainer, seed_everything

RECIPE = Path(__file__).parent.parent / "configs" / "stylegan_tiny.yaml"
STEPS = 60


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth16")
    synth.write_colour(root, n=64, size=16, seed=0, test_fraction=0.1)
    return root


def test_fid_and_kid_beat_the_untrained_generator(data: Path, tmp_path: Path) -> None:
    # measured (RandomFeatures, 64 samples vs 58 training images, 2 slow cores): untrained
    # FID 5.87 KID 8.57; 60 steps FID 2.12 KID 1.77 (11 s); 150 steps FID 0.12 KID 0.018.
    # Asked at 60 steps: FID and KID at most 60% of the untrained figures.
    over = {
        "out": str(tmp_path / "run"),
        "data": {"root": str(data)},
        "train": {"steps": STEPS, "eval_every": STEPS, "sample_every": 0},
    }
    cfg = build_config(merge(read_yaml(RECIPE), over))
    seed_everything(0)
    trainer = Trainer(cfg)
    method = trainer.build()
    evaluator = build_evaluator(StyleGAN, cfg)
    assert isinstance(evaluator, SampleEval)  # the method's word, not the trainer's
    before = evaluator(method)
    run = trainer.fit(method)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    after = [r for r in records if "eval_fid" in r][-1]
    assert after["step"] == STEPS
    assert after["eval_fid"] < 0.6 * before["eval_fid"]
    assert after["eval_kid"] < 0.6 * before["eval_kid"]
    assert 0 <= after["eval_precision"] <= 1 and 0 <= after["eval_recall"] <= 1
    assert (run / "checkpoints" / "best.pt").is_file()  # best_metric fid picks it
