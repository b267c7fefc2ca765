"""What is particular to MUNIT: flood masks follow their A crops, the keep loss, styles at inference.

The shared suite (tests/test_method_contract.py -k munit) covers steps, resume and checkpoints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from pixmorph.data.flood import FloodDataset
from pixmorph.data.load_options import LoadOptions
from pixmorph.data.synth_flood import write_flood
from pixmorph.errors import ConfigError, DataError
from pixmorph.methods.munit import MUNIT
from pixmorph.methods.settings import build_config
from pixmorph.training.trainer import build_method, make_loader, seed_everything

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flood")
    write_flood(root, n=8, size=32, seed=0, test_fraction=0.25, sim_fraction=0.0)
    return root


def tree(root: Path, out: Path, **model: float) -> dict:
    return {
        "method": "munit",
        "out": str(out),
        "data": {"root": str(root), "crop_size": 32, "load_size": 40},
        "train": {"steps": 4, "batch_size": 2, "seed": 0, "precision": "fp32", "compile": False},
        "model": {**MUNIT.tiny_settings["model"], **model},
    }


def test_mask_gets_the_crop_and_flip_of_its_image(flood: Path, tmp_path: Path):
    # A images that *are* their masks: every crop and flip must leave them equal
    a = tmp_path / "trainA"
    a.mkdir()
    for p in (flood / "maskA").glob("*.png"):
        with Image.open(p) as m:
            m.convert("RGB").save(a / p.name)
    # no resize here (that is nearest for masks, bicubic for images): crops and flips only
    opts = LoadOptions(preprocess_mode="crop", load_size=32, crop_size=24)
    ds = FloodDataset(a, flood / "trainB", flood / "maskA", options=opts)
    flips = 0
    for key in range(12):
        item = ds[key]
        assert item["mask_a"].shape == (1, 24, 24)
        assert torch.equal(item["mask_a"][0], (item["a"][0] > 0).float())
        flips += int(ds.rng(key).random(3)[2] < 0.5)  # the flip of A's draw
    assert 0 < flips < 12  # some crops were flipped, some not


def test_missing_masks_are_named(flood: Path, tmp_path: Path):
    masks = tmp_path / "masks"
    shutil.copytree(flood / "maskA", masks)
    victim = sorted(masks.glob("*.png"))[0]
    victim.unlink()
    with pytest.raises(DataError, match=victim.name):
        FloodDataset(flood / "trainA", flood / "trainB", masks)


def test_keep_loss_needs_masks(flood: Path, tmp_path: Path):
    root = tmp_path / "nomask"
    shutil.copytree(flood / "trainA", root / "trainA")
    shutil.copytree(flood / "trainB", root / "trainB")
    cfg = build_config(tree(root, tmp_path / "run", lambda_keep=10.0))
    with pytest.raises(ConfigError, match="maskA"):
        MUNIT.make_dataset(cfg, train=True)


def _keep_after(flood: Path, out: Path, weight: float, steps: int = 10) -> tuple[float, float]:
    """(first, last) masked |fake_b - real_a| over a few steps on one batch, lr 1e-3."""
    t = tree(flood, out, lambda_keep=weight)
    t["train"]["lr"] = 1e-3
    cfg = build_config(t)
    seed_everything(0)
    method = build_method(cfg, CPU)
    batch = next(iter(make_loader(method.make_dataset(cfg, True), cfg, 0, CPU)))
    assert set(batch["mask_a"].unique().tolist()) == {0.0, 1.0}
    keep = [method.train_step(batch, step)["keep_a"] for step in range(1, steps + 1)]
    return keep[0], keep[-1]


def test_keep_loss_pulls_the_translation_towards_the_input_outside_the_mask(
    flood: Path, tmp_path: Path
):
    """With the keep loss the masked error falls well below that of a run without its pull."""
    first, with_keep = _keep_after(flood, tmp_path / "keep", 50.0)
    first_ctrl, without = _keep_after(flood, tmp_path / "ctrl", 1e-9)  # logged, no pull
    assert first == pytest.approx(first_ctrl)  # same start: the same seed and batch
    assert with_keep < 0.6 * first and with_keep < 0.7 * without, (first, with_keep, without)


def test_style_codes_make_different_translations(flood: Path, tmp_path: Path):
    cfg = build_config(tree(flood, tmp_path / "run"))
    seed_everything(0)
    method = build_method(cfg, CPU)
    gen = method.inference_generator("AtoB")
    assert gen.style_dim == 8 and gen.size_multiple == 4
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        style = gen.style_encoder(torch.rand(2, 3, 32, 32) * 2 - 1)  # from B examples
        assert style.shape == (2, 8)
        y0 = gen.module(x, torch.zeros(2, 8))
        y1 = gen.module(x, style)
    assert y0.shape == x.shape and (y0 - y1).abs().mean() > 1e-3
    assert torch.equal(method.translate(x, "AtoB"), y0)  # translate uses the zero code
