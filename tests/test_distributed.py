"""Data-parallel training on this CPU: 2 gloo processes under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pixmorph.nets.syncnorm import CrossRankBatchNorm2d

TINY = [
    "--size",
    "32",
    "--direction",
    "BtoA",
    "--no-progress",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "model.generator.dropout=false",
    "train.log_every=1",
    "train.sample_every=0",
    "data.flip=true",
]


def pixmorph(*args: str) -> subprocess.CompletedProcess:
    # one thread per process in every run: torchrun gives its workers one thread unless told
    # otherwise, and a run with another thread count sums convolutions in another order
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pixmorph", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["model"]


@pytest.mark.parametrize("norm", ["instance", "syncbatch"])
def test_two_processes_equal_one_process_with_twice_the_batch(paired_root, tmp_path, norm):
    norms = [f"model.generator.norm={norm}", f"model.discriminator.norm={norm}"]
    common = ["train", "--data", str(paired_root), "--steps", "2", *TINY, *norms]
    one = pixmorph(*common, "--batch-size", "4", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = pixmorph(*common, "--batch-size", "2", "--nproc", "2", "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    assert "2 per process x 2 processes = global batch 4" in two.stderr
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert w1.keys() == w2.keys() and not any(k.startswith("module.") for k in w2)
    for k in w1:
        # a conv bias feeding an instance norm has an exactly-zero gradient: Adam turns its
        # rounding noise into +-lr steps, so only such biases are left out of the comparison
        if norm == "instance" and k.endswith(".bias"):
            continue
        if w1[k].is_floating_point():
            assert torch.allclose(w1[k], w2[k], atol=2e-5, rtol=1e-4), k


def test_cyclegan_two_processes_equal_one_process_with_twice_the_batch(unpaired_root, tmp_path):
    # the image pool draws per process, so it is off: everything else must agree
    common = ["train", "--method", "cyclegan", "--data", str(unpaired_root), "--steps", "2"]
    common += [*TINY, "model.generator.arch=resnet_6blocks", "model.pool_size=0"]
    one = pixmorph(*common, "--batch-size", "4", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = pixmorph(*common, "--batch-size", "2", "--nproc", "2", "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert w1.keys() == w2.keys() and any(k.startswith("g_ba.") for k in w1)
    for k in w1:
        if k.endswith(".bias") or not w1[k].is_floating_point():
            continue  # biases before instance norms: see the pix2pix test above
        assert torch.allclose(w1[k], w2[k], atol=2e-5, rtol=1e-4), k


def test_two_process_run_writes_once_and_resumes(paired_root, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(paired_root), "--batch-size", "2", "--nproc", "2", *TINY]
    first = pixmorph("train", *args, "--steps", "2", "--out", str(run), "train.checkpoint_every=1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("run folder:") == 1  # only the main process reports
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["step"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    again = pixmorph("train", "--resume", str(run), "--steps", "3", "--nproc", "2", "--no-progress")
    assert again.returncode == 0, again.stderr
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[-1]["images_per_s"] > 0


def test_a_failing_job_ends_with_a_clear_message(tmp_path):
    out = pixmorph(
        "train",
        "--data",
        str(tmp_path / "missing"),
        "--nproc",
        "2",
        *TINY,
        "--out",
        str(tmp_path / "r"),
    )
    assert out.returncode != 0
    assert "missing does not exist" in out.stderr
    assert "a worker process failed" in out.stderr


def test_cross_rank_batch_norm_is_plain_batch_norm_in_one_process():
    torch.manual_seed(0)
    plain, cross = nn.BatchNorm2d(4), CrossRankBatchNorm2d(4)
    cross.load_state_dict(plain.state_dict())
    x = torch.randn(3, 4, 5, 5)
    assert torch.equal(plain(x), cross(x))
    assert torch.equal(plain.running_var, cross.running_var)
