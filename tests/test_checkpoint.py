"""Checkpoints: atomic writes, safe loading, truncation detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from pixmorph.checkpoint import load_checkpoint, load_file, save_atomic
from pixmorph.errors import CheckpointError
from pixmorph.training.trainer import Trainer


def test_atomic_save_leaves_no_temp_files(tmp_path: Path):
    save_atomic({"x": torch.ones(3)}, tmp_path / "a.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]
    assert torch.equal(load_file(tmp_path / "a.pt")["x"], torch.ones(3))


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "latest.pt"
    save_atomic({"step": 1}, path)

    def crash(*args, **kwargs):  # a crash half-way through writing the new file
        f = args[1]
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"step": 2}, path)
    assert load_file(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_truncated_checkpoint_is_detected_and_the_previous_one_loads(paired_root, tmp_path):
    cfg = tiny_config(paired_root, tmp_path / "run", train={"steps": 4, "keep_checkpoints": 2})
    Trainer(cfg).fit()
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in ckpts] == ["step_00000002.pt", "step_00000004.pt"]
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])  # as if a kill hit a non-atomic write
    with pytest.raises(CheckpointError, match="latest.pt could not be read.*truncated"):
        load_checkpoint(tmp_path / "run")
    previous = load_checkpoint(ckpts[0])
    assert previous["step"] == 2 and previous["config"]["train"]["steps"] == 4


def test_checkpoint_is_self_describing_and_weights_only(paired_root, tmp_path):
    cfg = tiny_config(paired_root, tmp_path / "run", train={"steps": 2})
    Trainer(cfg).fit()
    raw = torch.load(tmp_path / "run/checkpoints/latest.pt", weights_only=True)
    assert raw["format"] == "pixmorph-checkpoint" and raw["step"] == 2
    assert set(raw["optimizers"]) == {"g", "d"} and set(raw["schedulers"]) == {"g", "d"}
    assert "torch" in raw["rng"] and raw["config"]["method"] == "pix2pix"


def test_not_a_pixmorph_checkpoint(tmp_path: Path):
    torch.save({"model.0.weight": torch.zeros(1)}, tmp_path / "plain.pth")
    with pytest.raises(CheckpointError, match="not a pixmorph checkpoint"):
        load_checkpoint(tmp_path / "plain.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    os.mkdir(tmp_path / "empty_run")
    with pytest.raises(CheckpointError, match="without checkpoints/latest.pt"):
        load_checkpoint(tmp_path / "empty_run")
