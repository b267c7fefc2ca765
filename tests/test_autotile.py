"""Inference tiles on its own when a whole image would not fit the memory budget."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from reliab_helpers import tiny_checkpoint

from pixmorph.errors import ConfigError
from pixmorph.inference import autotile
from pixmorph.inference.loading import load_generator

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def ckpt(paired_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(paired_root, tmp_path_factory.mktemp("tiny"))


def test_parse_bytes_and_fit_tile() -> None:
    assert autotile.parse_bytes("2G") == 2 * 2**30 and autotile.parse_bytes("512MiB") == 2**29
    assert autotile.parse_bytes("1000000") == 10**6
    with pytest.raises(ConfigError, match="--memory-budget"):
        autotile.parse_bytes("lots", "--memory-budget")
    assert autotile.fit_tile(100.0, (1, 3, 100, 100), 10**6, 32) == 0  # fits whole
    tile = autotile.fit_tile(100.0, (1, 3, 1000, 1000), 10**6, 32)
    assert tile % 32 == 0 and 100.0 * tile**2 <= 10**6 < 100.0 * (tile + 32) ** 2
    assert autotile.fit_tile(100.0, (1, 3, 1000, 1000), 10, 32) == 32  # never below one multiple


def test_translator_tiles_under_a_small_budget(ckpt: Path, caplog) -> None:
    translator = load_generator(ckpt, device="cpu", precision="fp32")
    x = torch.rand(1, 3, 200, 232) * 2 - 1
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="pixmorph.inference.translator"):
        whole = translator(x)
    assert torch.rand(1) == before  # measuring did not move the random stream
    assert "tiles" not in caplog.text  # the default budget (1/4 of the free memory) fits
    per_px = translator._bytes_per_px
    assert per_px is not None and per_px > 3 * 4  # more than the input itself
    translator.memory_budget = int(per_px * 64 * 64)
    with caplog.at_level(logging.INFO, logger="pixmorph.inference.translator"):
        tiled = translator(x)
    assert re.search(r"translating in 64 px tiles", caplog.text)
    assert tiled.shape == whole.shape == x.shape and not torch.equal(tiled, whole)
    translator.tile = 0  # an explicit --tile 0 means whole images, whatever the budget
    assert torch.equal(translator(x), whole)


def test_translate_subprocess_stays_under_a_memory_bound(ckpt: Path, tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (250, 250, 3), dtype=np.uint8)
    Image.fromarray(noise).resize((2000, 2000)).save(tmp_path / "big.png", compress_level=1)
    probe = (
        "import resource, sys; from pixmorph.cli import main; code = main(sys.argv[1:]); "
        "print('RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
        "sys.exit(code)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    args = ["translate", "--checkpoint", str(ckpt), "--input", str(tmp_path / "big.png")]
    args += ["--output", str(tmp_path / "out"), "--memory-budget", "32M"]
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "px tiles" in done.stderr
    rss_mb = int(re.search(r"RSS_KB (\d+)", done.stderr).group(1)) / 1024
    # measured: ~600 MB tiled (~300 MB of it Python + torch), ~860 MB whole-image
    assert rss_mb < 750, rss_mb
    assert Image.open(tmp_path / "out" / "big.png").size == (2000, 2000)
