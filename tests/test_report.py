"""`pixmorph report`: a page built from a tiny real run, and the Pillow plots it shows."""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path

import pytest
from conftest import tiny_config
from PIL import Image

from pixmorph.cli import main
from pixmorph.evaluation.plot import PALETTE, line_plot, nice_ticks
from pixmorph.evaluation.run_report import pick_samples, summary_rows
from pixmorph.training.trainer import Trainer


@pytest.fixture(scope="module")
def run_dir(paired_root, tmp_path_factory) -> Path:
    """8 steps with samples, checkpoints and held-out evaluation every 2 steps."""
    out = tmp_path_factory.mktemp("report") / "run"
    train = {"steps": 8, "sample_every": 2, "eval_every": 2, "checkpoint_every": 4}
    Trainer(tiny_config(paired_root, out, train=train)).fit()
    return out


def test_report_page_references_files_that_exist(run_dir, capsys):
    assert main(["report", str(run_dir), "--samples", "3"]) == 0
    page_path = run_dir / "report.html"
    assert str(page_path) in capsys.readouterr().out
    page = page_path.read_text()
    refs = re.findall(r"(?:src|href)='([^']+)'", page)
    assert refs and all(not r.startswith(("http:", "https:", "//")) for r in refs)
    for ref in refs:
        assert (run_dir / ref).is_file(), ref
    plots = [r for r in refs if r.startswith("report/")]
    names = {Path(p).stem for p in plots}
    for expected in ("loss_g_l1", "loss_d_real", "eval_eval_psnr", "lr_lr_g_lr_d"):
        assert expected in names
    for p in plots:
        with Image.open(run_dir / p) as img:
            img.load()
            assert img.size == (480, 280)
    # 4 sample grids exist (steps 2, 4, 6, 8): 3 shown, first and last among them
    samples = [r for r in refs if r.startswith("samples/")]
    assert samples == [
        "samples/step_00000002.png",
        "samples/step_00000006.png",
        "samples/step_00000008.png",
    ]
    # the resolved config and the final numbers are on the page
    assert "Resolved config" in page and "best_metric: psnr" in page
    assert "eval_psnr" in page and "checkpoints/best.pt" in page


def test_embedded_report_is_one_portable_file(run_dir, tmp_path):
    out = tmp_path / "elsewhere.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0  # outside the run: embedded
    page = out.read_text()
    srcs = re.findall(r"src='([^']+)'", page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    with Image.open(io.BytesIO(base64.b64decode(srcs[0].split(",", 1)[1]))) as img:
        assert img.format == "PNG"


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_summary_rows_pick_best_in_the_right_direction():
    series = {
        "eval_l1": ([2.0, 4.0, 6.0], [0.3, 0.2, 0.25]),
        "eval_psnr": ([2.0, 4.0, 6.0], [20.0, 22.0, 21.0]),
        "g_gan": ([1.0, 2.0], [1.0, math.nan]),
    }
    rows = {r["name"]: r for r in summary_rows(series)}
    assert rows["eval_l1"]["best"] == (0.2, 4) and rows["eval_psnr"]["best"] == (22.0, 4)
    assert rows["g_gan"]["best"] is None and rows["g_gan"]["max"] == 1.0


def test_pick_samples_spreads_and_keeps_ends():
    files = [Path(f"step_{i:08d}.png") for i in range(1, 101)]
    picked = pick_samples(files, 5)
    assert len(picked) == 5 and picked[0] == files[0] and picked[-1] == files[-1]
    assert pick_samples(files[:3], 5) == files[:3] and pick_samples(files, 1) == files[-1:]


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-3.2, 17.9), (1e-5, 3e-5), (995.0, 1010.0)])
def test_nice_ticks_are_round_and_inside(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 11
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6


def test_line_plot_draws_the_series_and_survives_odd_data(tmp_path):
    path = line_plot(
        {"a": ([0, 1, 2, 3], [1.0, 2.0, math.nan, 4.0]), "b": ([0, 3], [5.0, 5.0])},
        tmp_path / "p.png",
        title="t",
        smooth=0.5,
    )
    with Image.open(path) as img:
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    assert PALETTE[0] in colours and PALETTE[1] in colours
    for series in (
        {"one": ([5], [1.0])},
        {"flat": ([0, 1], [2.0, 2.0])},
        {},
        {"n": ([1], [math.inf])},
    ):
        with Image.open(line_plot(series, tmp_path / "q.png")) as img:
            assert img.size == (480, 280)
