"""The speed benchmarks print as they go: lines reach a pipe before the run ends."""

from __future__ import annotations

import importlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from pixmorph.training.calibration import first_batch
from pixmorph.training.trainer import build_method

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", ["train_speed.py", "translate_speed.py"])
def test_the_first_line_names_the_cpu_and_arrives_through_a_pipe_at_once(script, tmp_path):
    # as a user's shell has it: Python block-buffers stdout into a pipe
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env = {
        **env,
        "PYTHONPATH": str(BENCH.parent / "src"),
        "OMP_NUM_THREADS": "1",
        "XDG_CACHE_HOME": str(tmp_path),
    }
    args = ["--threads", "1"]
    args += ["--cases", "pix2pix_32", "--steps", "1"] if script == "train_speed.py" else []
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=BENCH,
        start_new_session=True,  # its workers, if any started, go with it
    )
    try:
        # a block-buffered stdout would hold the line back for minutes: wait 60 s at most
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        first = proc.stdout.readline() if ready else ""
        # the run goes on (matmul peaks, workers) long after this line
        still_running = proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert first.startswith("CPU: "), first
    assert "flags" in first and "torch" in first
    assert still_running


def test_step_parts_split_a_step_by_network_and_optimizer(paired_root, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    step_parts = importlib.import_module("step_parts")
    cfg = tiny_config(paired_root, tmp_path, train={"batch_size": 1, "precision": "fp32"})
    method = build_method(cfg, torch.device("cpu"))
    batch = first_batch(type(method), cfg)
    parts = step_parts.StepParts(method)
    logged: list[dict] = []
    seconds = parts.measure(lambda: method.train_step(batch, 1), logged.append)
    nets = set(method.runtime.optimizers)  # pix2pix: g and d, each its own optimizer
    expected = {f"{part} {n}" for part in ("forward", "backward", "optimizer") for n in nets}
    assert expected <= set(seconds), seconds
    assert all(seconds[k] > 0 for k in expected)
    assert logged and "step" in logged[0] and len(logged[0]) > 1  # the losses went to the log
    read = step_parts.data_timer(cfg, method, 32)
    assert read() > 0
    table = step_parts.parts_table({"x": [seconds, seconds]})
    assert table[0].split()[:2] == ["setting", "forward"] and table[1].startswith("x")
