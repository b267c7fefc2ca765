"""Fault injection: training killed (SIGKILL) at random moments, inside checkpoint writes too."""

from __future__ import annotations

import io
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pixmorph import checkpoint
from pixmorph.checkpoint import load_checkpoint
from pixmorph.cli import main
from pixmorph.data import synth
from pixmorph.run_folder import RunDir

KILLS = 20
EVERY = 1  # train.checkpoint_every
SRC = Path(__file__).resolve().parents[1] / "src"


def _train_args(data: Path, run: Path) -> list[str]:
    """A tiny pix2pix run that never finishes by itself; a resume continues it."""
    if (run / "checkpoints" / "latest.pt").exists():
        return ["-q", "train", "--resume", str(run), "--no-progress"]
    return [
        *("-q", "train", "--method", "pix2pix", "--data", str(data), "--out", str(run)),
        *("--direction", "BtoA", "--size", "32", "--steps", "100000", "--no-progress"),
        "model.generator.ngf=8",
        "model.discriminator.ndf=8",
        "train.sample_every=0",
        "train.log_every=1",
        f"train.checkpoint_every={EVERY}",
        "train.keep_checkpoints=1",
        "data.verify=false",
    ]


def _slow_save(obj: object, f: io.IOBase) -> None:
    """torch.save in small flushed pieces, so a random kill often lands inside a write."""
    buf = io.BytesIO()
    _real_save(obj, buf)
    data = buf.getvalue()
    for i in range(0, len(data), 1 << 16):
        f.write(data[i : i + (1 << 16)])
        f.flush()
        time.sleep(0.003)


_real_save = torch.save


def _forked_train(args: list[str]) -> None:
    """A child forked from this already-imported process (a fresh interpreter takes seconds)."""
    torch.set_num_threads(1)
    checkpoint.torch.save = _slow_save
    os._exit(main(args))


def _start(args: list[str], fresh_interpreter: bool) -> int:
    """The PID of a training started with `pixmorph` args."""
    if fresh_interpreter:
        env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "pixmorph", *args]
        return subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL).pid
    proc = multiprocessing.get_context("fork").Process(target=_forked_train, args=(args,))
    proc.start()
    return proc.pid


def _progress(run: RunDir) -> tuple[float, int]:
    latest = run.latest.stat().st_mtime if run.latest.exists() else 0.0
    return latest, len(run.read_metrics())


def _temps(run: RunDir) -> list[Path]:
    return sorted(run.checkpoints.glob(".*.tmp")) if run.checkpoints.exists() else []


@pytest.mark.skipif(sys.platform != "linux", reason="fork and SIGKILL semantics of Linux")
def test_random_kills_lose_at_most_one_interval(tmp_path: Path) -> None:
    data, run = tmp_path / "data", RunDir(tmp_path / "run")
    synth.write_paired(data, n=8, size=32, seed=0, test_fraction=1 / 4)
    rng = random.Random(1234)
    # Adam's first use imports torch._dynamo (seconds): do it once here, before the forks
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    saved_steps = []
    for i in range(KILLS):
        before = _progress(run)
        # the first run is a real `python -m pixmorph`; the rest fork from this process
        pid = _start(_train_args(data, run.root), fresh_interpreter=i == 0)
        deadline = time.monotonic() + 60
        while _progress(run) == before and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until it trains, then kill at a random moment
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert len(_temps(run)) <= 2  # at most the files being written at the kill
        if not run.latest.exists():  # killed before its first save: the next start is fresh
            assert saved_steps == []
            continue
        state = load_checkpoint(run.root)  # weights-only load of a complete file
        logged = max(r["step"] for r in run.read_metrics())
        assert logged - state["step"] <= EVERY, f"kill {i}: lost {logged - state['step']} steps"
        saved_steps.append(state["step"])
    assert saved_steps[-1] > saved_steps[0]  # resumes made progress
    # a last resume runs to the end: leftovers are cleaned up, the run completes
    final = saved_steps[-1] + 2
    args = [*_train_args(data, run.root), "--steps", str(final)]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pixmorph", *args], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert load_checkpoint(run.root)["step"] == final
    assert _temps(run) == []
    assert not (run.root / "train.lock").exists()
