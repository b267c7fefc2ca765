"""Checkpoints written before the package was restructured still load, translate alike and resume.

tests/fixtures/v0_*.pt were saved by pixmorph at commit e864fe0 (tiny pix2pix and CycleGAN runs of
2 steps); v0_outputs.pt holds what that code translated a fixed input to.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pixmorph.data import synth
from pixmorph.inference.loading import load_generator
from pixmorph.training.trainer import Trainer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES = [("pix2pix", "BtoA"), ("cyclegan", "AtoB"), ("cyclegan", "BtoA")]


def probe() -> torch.Tensor:
    return (torch.linspace(-1, 1, 3 * 20 * 24).reshape(1, 3, 20, 24)).sin()


@pytest.mark.parametrize(("name", "direction"), CASES)
def test_old_checkpoint_translates_as_before(name, direction):
    expected = torch.load(FIXTURES / "v0_outputs.pt", weights_only=True)[f"{name}_{direction}"]
    translator = load_generator(
        FIXTURES / f"v0_{name}.pt", direction=direction, precision="fp32", device="cpu"
    )
    assert torch.allclose(translator(probe()), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan"])
def test_old_checkpoint_resumes(name, tmp_path):
    data = tmp_path / "data"
    if name == "pix2pix":
        synth.write_paired(data, n=6, size=32, seed=0, test_fraction=1 / 3)
    else:
        synth.write_unpaired(data, n=6, size=32, seed=0, test_fraction=1 / 3)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / f"v0_{name}.pt", run / "checkpoints" / "latest.pt")
    old = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    trainer = Trainer.resume(run, {"data": {"root": str(data)}, "train": {"steps": 10}})
    trainer.fit()
    new = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert old["step"] == 2 and new["step"] == 10
    assert set(new["optimizers"]) == set(old["optimizers"])
    # the resumed steps trained from the saved weights: they moved, by a few optimizer steps
    key = next(k for k in old["model"] if k.endswith("weight"))
    delta = (new["model"][key] - old["model"][key]).abs().max()
    assert 0 < delta < 0.1
