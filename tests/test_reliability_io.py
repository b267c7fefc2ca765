"""translate never overwrites its inputs; data tools refuse input of the wrong layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from reliab_helpers import tiny_checkpoint

from pixmorph.cli import main
from pixmorph.data.tools.pairs import split
from pixmorph.data.tools.unpair import unpair
from pixmorph.errors import DataError


@pytest.fixture(scope="module")
def ckpt(paired_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(paired_root, tmp_path_factory.mktemp("tiny"))


def photos(folder: Path, names: list[str], size: tuple[int, int] = (32, 32)) -> dict[str, bytes]:
    """Write small photos; their bytes, to show later that nothing was overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.new("RGB", size, (40 * k, 90, 200 - 30 * k)).save(folder / name)
    return {n: (folder / n).read_bytes() for n in names}


def translate(ckpt: Path, src: Path, out: Path, capsys) -> tuple[int, str]:
    code = main(["translate", "--checkpoint", str(ckpt), "--input", str(src), "--output", str(out)])
    return code, capsys.readouterr().err


def test_output_equal_to_input_is_refused_and_inputs_survive(ckpt, tmp_path, capsys) -> None:
    src = tmp_path / "in"
    before = photos(src, ["a.png", "b.png"])
    code, err = translate(ckpt, src, src, capsys)
    assert code == 2 and "would overwrite the input" in err and "a.png" in err
    assert {n: (src / n).read_bytes() for n in before} == before
    assert sorted(p.name for p in src.iterdir()) == ["a.png", "b.png"]
    # a single file whose output would land on itself
    code, err = translate(ckpt, src / "a.png", src, capsys)
    assert code == 2 and (src / "a.png").read_bytes() == before["a.png"]


def test_outputs_that_cannot_collide_are_allowed(ckpt, tmp_path, capsys) -> None:
    src = tmp_path / "in"
    before = photos(src, ["a.jpg", "b.bmp"])  # results are .png: new names in the same folder
    code, _ = translate(ckpt, src, src, capsys)
    assert code == 0
    assert {n: (src / n).read_bytes() for n in before} == before
    assert (src / "a.png").is_file() and (src / "b.png").is_file()
    code, err = translate(ckpt, src, src, capsys)  # again: a.png is an input now
    assert code == 2 and "a.png" in err
    src2 = tmp_path / "in2"
    photos(src2, ["a.png", "b.png"])
    inside = src2 / "out"  # a subfolder of the input is not read as input
    code, _ = translate(ckpt, src2, inside, capsys)
    assert code == 0 and sorted(p.name for p in inside.iterdir()) == ["a.png", "b.png"]


def test_two_inputs_with_one_output_name_are_refused(ckpt, tmp_path, capsys) -> None:
    src = tmp_path / "in"
    photos(src, ["a.jpg", "a.bmp"])
    code, err = translate(ckpt, src, tmp_path / "out", capsys)
    assert code == 2 and "would both be written to" in err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_unpair_and_split_refuse_single_images(tmp_path: Path, capsys) -> None:
    root = tmp_path / "squares"
    photos(root / "train", ["0.png", "1.png", "2.png"], size=(32, 32))
    for tool in (unpair, split):
        with pytest.raises(DataError, match=r"not: train/0\.png \(32x32\)"):
            tool(root, tmp_path / f"out_{tool.__name__}")
        assert not (tmp_path / f"out_{tool.__name__}").exists()
    assert main(["data", "unpair", str(root), str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert "width = 2 x height" in err and "data check" in err


def test_unpair_still_takes_aligned_pairs(paired_root: Path, tmp_path: Path) -> None:
    report = unpair(paired_root, tmp_path / "u")
    assert report.written["trainA"] == report.written["trainB"] > 0
