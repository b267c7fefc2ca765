"""The command line end to end: synth -> train -> translate -> evaluate, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixmorph import __version__
from pixmorph.cli import main

TINY = [
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "train.log_every=1",
    "train.checkpoint_every=2",
    "train.sample_every=2",
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "data", root / "run"
    assert main(["data", "synth", "--out", str(data), "--n", "12", "--size", "32"]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["test", "train"]
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--direction",
            "BtoA",
            "--size",
            "32",
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--out",
            str(run),
            *TINY,
        ]
    )
    assert code == 0
    return data, run


def test_train_writes_a_run(trained):
    _, run = trained
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()
    assert len(list((run / "samples").glob("*.png"))) == 2


def test_translate_keeps_odd_sizes(trained, tmp_path):
    _, run = trained
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (37, 23), (10, 200, 30)).save(inputs / "odd.png")
    Image.new("L", (50, 41), 128).save(inputs / "grey.jpg")
    Image.new("RGB", (37, 23), (200, 10, 30)).save(inputs / "odd2.bmp")
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(run),
                "--input",
                str(inputs),
                "--output",
                str(tmp_path / "out"),
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert sizes == {"odd.png": (37, 23), "grey.png": (50, 41), "odd2.png": (37, 23)}
    # a single file and resize-fitting work too
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(run / "checkpoints" / "latest.pt"),
                "--input",
                str(inputs / "odd.png"),
                "--output",
                str(tmp_path / "o2"),
                "--fit",
                "resize",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "o2" / "odd.png").size == (37, 23)


def test_evaluate_writes_json_and_html(trained, tmp_path):
    data, run = trained
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(data), "--out", str(out)]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["count"] == len(list((data / "test").iterdir()))
    assert {"l1", "psnr", "ssim"} == set(summary["mean"])
    assert len(summary["images"]) == summary["count"]
    html = (out / "index.html").read_text()
    for row in summary["images"]:
        for kind in ("input", "output", "target"):
            assert f"images/{row['name']}_{kind}.png" in html
            assert (out / "images" / f"{row['name']}_{kind}.png").is_file()


def test_resume_via_cli_continues(trained, tmp_path):
    _, run = trained
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_refuses_to_train_over_an_existing_run(trained, capsys):
    data, run = trained
    assert main(["train", "--data", str(data), "--size", "32", "--out", str(run), *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["translate", "--checkpoint", "nowhere", "--input", ".", "--output", "o"],
            "does not exist",
        ),
        (["train", "--data", "nowhere", "--dry-run"], None),
        (["evaluate", "--checkpoint", "nowhere", "--data", "."], "does not exist"),
        (["train", "--size", "40", "--dry-run"], "multiple of 16"),
    ],
)
def test_errors_are_clear(args, message, capsys):
    code = main(args)
    err = capsys.readouterr().err
    if message is None:  # --dry-run only resolves settings; data is read when training starts
        assert code == 0
    else:
        assert code == 2 and message in err and "Traceback" not in err


def test_train_on_missing_data_names_it(tmp_path, capsys):
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "nowhere"),
            "--size",
            "32",
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ]
    )
    assert code == 2 and "nowhere does not exist" in capsys.readouterr().err


def test_python_m_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "pixmorph", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"pixmorph {__version__}"
