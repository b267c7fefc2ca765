"""A short real-data run on the CMP facades images (skipped where ../shared/data is absent)."""

from __future__ import annotations

import shutil

import pytest
from conftest import SHARED_DATA, tiny_config

from pixmorph.cli import main
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.inference.loading import load_generator
from pixmorph.methods.pix2pix import Pix2Pix

FACADES = SHARED_DATA / "facades" / "train"
pytestmark = pytest.mark.skipif(not FACADES.is_dir(), reason="../shared/data/facades not present")


def test_short_facades_run_labels_to_photo(tmp_path):
    files = sorted(FACADES.glob("*.jpg"), key=lambda p: int(p.stem))[:24]
    for split, chunk in (("train", files[:20]), ("test", files[20:])):
        (tmp_path / "data" / split).mkdir(parents=True)
        for f in chunk:
            shutil.copy(f, tmp_path / "data" / split / f.name)
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "data"),
            "--direction",
            "BtoA",
            "--size",
            "64",
            "--steps",
            "20",
            "--batch-size",
            "2",
            "--out",
            str(run),
            "--no-progress",
            "model.generator.ngf=16",
            "model.discriminator.ndf=16",
            "train.log_every=5",
            "train.sample_every=10",
            "train.checkpoint_every=10",
            "data.cache=true",
        ]
    )
    assert code == 0
    cfg = tiny_config(tmp_path / "data", tmp_path / "x", data={"crop_size": 64, "load_size": 64})
    test_set = Pix2Pix.make_dataset(cfg, train=False)
    # BtoA: the input is the label map (right half), the target the photo (left half)
    item = test_set[0]
    assert item["a"].shape == (3, 64, 64)
    summary = evaluate_paired(load_generator(run), test_set)
    assert summary["count"] == 4
    assert 5.0 < summary["mean"]["psnr"] < 40.0  # a sane photo reconstruction, not noise or NaN
    assert len(list((run / "samples").glob("*.png"))) == 2
