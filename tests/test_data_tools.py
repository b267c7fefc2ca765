"""Tests for the dataset tools (`pixmorph data combine|split|edges|colorize|unpair|check`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixmorph.cli import main
from pixmorph.data.synth import render_pair, write_colour
from pixmorph.data.tools.check import check
from pixmorph.data.tools.colorize import colorize, is_grey_photo
from pixmorph.data.tools.edges import edges
from pixmorph.data.tools.pairs import combine, split
from pixmorph.data.tools.unpair import derangement_orders, unpair
from pixmorph.errors import DataError


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def _snapshot(root: Path) -> dict[str, str]:
    """Content hash of every file under root, to prove a tool left its input alone."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _photo(i: int, size: int = 32) -> Image.Image:
    return render_pair(np.random.default_rng([9, i]), size)[0]


def _label(i: int, size: int = 32) -> Image.Image:
    return render_pair(np.random.default_rng([9, i]), size)[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Colour photos in train/ (10) and test/ (2), 32x32."""
    root = tmp_path_factory.mktemp("photos")
    write_colour(root, n=12, size=32, seed=0, test_fraction=1 / 6)
    return root


@pytest.fixture
def ab_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Flat A/ and B/ with 6 true pairs plus every kind of trouble combine must report."""
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir(), b.mkdir()
    for i in range(6):
        _photo(i).save(a / f"p{i}.png")
        _label(i).save(b / f"p{i}.png")
    _photo(10).save(a / "only_a.png")
    _label(11).save(b / "only_b.png")
    _photo(12).save(a / "big.png")
    _label(12, 64).save(b / "big.png")  # B twice A's size
    _photo(13).save(a / "p0.jpg")  # duplicate stem of p0.png in A
    _photo(14).save(a / "broken.png")
    _label(14).save(b / "broken.png")
    _truncate(a / "broken.png")
    return a, b


# --- combine / split ---------------------------------------------------------------------


def test_split_then_combine_round_trips_pixels_exactly(paired_root: Path, tmp_path: Path) -> None:
    report = split(paired_root, tmp_path / "ab")
    assert report.written == {"A/test": 8, "B/test": 8, "A/train": 40, "B/train": 40}
    assert not report.skipped
    original = paired_root / "train" / "00000.png"
    w = _pixels(original).shape[1]
    assert np.array_equal(
        _pixels(tmp_path / "ab/A/train/00000.png"), _pixels(original)[:, : w // 2]
    )
    assert np.array_equal(
        _pixels(tmp_path / "ab/B/train/00000.png"), _pixels(original)[:, w // 2 :]
    )
    report = combine(tmp_path / "ab/A", tmp_path / "ab/B", tmp_path / "again")
    assert report.written == {"test": 8, "train": 40} and not report.skipped
    for split_name in ("train", "test"):
        names = _pngs(paired_root / split_name)
        assert _pngs(tmp_path / "again" / split_name) == names
        for name in names:
            assert np.array_equal(
                _pixels(paired_root / split_name / name),
                _pixels(tmp_path / "again" / split_name / name),
            )


def test_combine_reports_unmatched_duplicate_unreadable_and_size_mismatch(
    ab_folders: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = ab_folders
    report = combine(a, b, tmp_path / "out")
    assert report.written == {"": 6}
    assert report.skipped == {
        "duplicate name in A": ["p0.png"],  # p0.jpg sorts first and is used
        "no match in B": ["only_a.png"],
        "no match in A": ["only_b.png"],
        "unreadable": ["broken.png"],
        "sizes differ (pass --resize)": ["big.png"],
    }
    out = tmp_path / "out"
    assert _pngs(out) == [f"p{i}.png" for i in range(6)]
    pair = _pixels(out / "p3.png")
    assert pair.shape == (32, 64, 3)
    assert np.array_equal(pair[:, :32], np.asarray(_photo(3)))
    assert np.array_equal(pair[:, 32:], np.asarray(_label(3)))
    # p0 pairs the first file by name (p0.jpg sorts before p0.png, so the JPEG is used)
    assert not np.array_equal(_pixels(out / "p0.png")[:, :32], np.asarray(_photo(0)))


def test_combine_resize_nearest_brings_b_to_a_size_without_new_colours(
    ab_folders: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = ab_folders
    report = combine(a, b, tmp_path / "out", resize="nearest")
    assert report.written == {"": 7} and "sizes differ (pass --resize)" not in report.skipped
    right = _pixels(tmp_path / "out" / "big.png")[:, 32:]
    assert right.shape == (32, 32, 3)
    label_colours = {tuple(c) for c in np.asarray(_label(12, 64)).reshape(-1, 3)}
    assert {tuple(c) for c in right.reshape(-1, 3)} <= label_colours


def test_combine_keeps_splits_and_reports_a_split_missing_on_one_side(
    tmp_path: Path,
) -> None:
    for side, render in (("A", _photo), ("B", _label)):
        for split_name, ids in (("train", range(3)), ("test", range(3, 5))):
            (tmp_path / side / split_name).mkdir(parents=True)
            for i in ids:
                render(i).save(tmp_path / side / split_name / f"{i}.png")
    (tmp_path / "A" / "val").mkdir()
    _photo(7).save(tmp_path / "A" / "val" / "7.png")
    report = combine(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    assert report.written == {"test": 2, "train": 3}
    assert report.skipped == {"split only in A": ["val"]}
    assert not (tmp_path / "out" / "val").exists()


def test_combine_keeps_16_bit_greyscale_and_writes_jpeg_on_request(tmp_path: Path) -> None:
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir(), b.mkdir()
    deep = np.random.default_rng(0).integers(0, 65536, (2, 16, 16)).astype(np.uint16)
    Image.fromarray(deep[0]).save(a / "x.png")
    Image.fromarray(deep[1]).save(b / "x.png")
    combine(a, b, tmp_path / "png")
    with Image.open(tmp_path / "png" / "x.png") as img:
        assert img.mode.startswith("I") and np.array_equal(np.asarray(img), np.hstack(deep))
    combine(a, b, tmp_path / "jpg", fmt="jpg")
    with Image.open(tmp_path / "jpg" / "x.jpg") as img:
        assert img.format == "JPEG" and img.size == (32, 16)


def test_combine_refuses_a_flat_folder_with_a_nested_one(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="same layout"):
        combine(photos, photos / "train", tmp_path / "out")


# --- safety ------------------------------------------------------------------------------

Tool = Callable[[Path, Path, bool], object]
TOOLS: dict[str, Tool] = {  # each reads the folder given, combine its train/ and test/ as A, B
    "split": lambda src, out, ow: split(src, out, overwrite=ow),
    "edges": lambda src, out, ow: edges(src, out, overwrite=ow),
    "colorize": lambda src, out, ow: colorize(src, out, overwrite=ow),
    "unpair": lambda src, out, ow: unpair(src, out, overwrite=ow),
    "combine": lambda src, out, ow: combine(src / "train", src / "test", out, overwrite=ow),
}


@pytest.mark.parametrize("tool", list(TOOLS))
def test_every_tool_refuses_unsafe_outputs_and_never_touches_its_input(
    tool: str, paired_root: Path, tmp_path: Path
) -> None:
    run = TOOLS[tool]
    src = tmp_path / "in"
    split(paired_root, tmp_path / "tmp")  # a private copy of the set whose files we can hash
    combine(tmp_path / "tmp" / "A", tmp_path / "tmp" / "B", src)
    before = _snapshot(src)
    for bad in (src / "train", src / "train" / "new"):  # an input itself, inside an input
        with pytest.raises(DataError, match="input"):
            run(src, bad, True)
    if tool != "combine":
        with pytest.raises(DataError, match="is the input"):
            run(src, src, True)
    with pytest.raises(DataError, match="contains the input"):
        run(src, tmp_path, True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not empty.*--overwrite"):
        run(src, out, False)
    run(src, out, True)
    assert (out / "keep.txt").read_text() == "user file"  # only image files are replaced
    assert _snapshot(src) == before


def test_overwrite_removes_images_of_a_larger_earlier_run(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    colorize(photos, out)
    (out / "train" / "stale.png").write_bytes((out / "train" / "00000.png").read_bytes())
    colorize(photos, out, overwrite=True)
    assert "stale.png" not in _pngs(out / "train")
    assert len(_pngs(out / "train")) == 10


def test_output_path_that_is_a_file_is_refused(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        colorize(photos, tmp_path / "file", overwrite=True)


# --- edges / colorize ---------------------------------------------------------------------


def test_edges_white_on_black_inverts_and_keeps_splits(photos: Path, tmp_path: Path) -> None:
    edges(photos, tmp_path / "black", sigma=1.0)
    edges(photos, tmp_path / "white", sigma=1.0, white_on_black=True)
    assert _pngs(tmp_path / "black" / "train") == _pngs(photos / "train")
    assert _pngs(tmp_path / "black" / "test") == _pngs(photos / "test")
    black = _pixels(tmp_path / "black" / "test" / "00005.png")[:, :32]
    white = _pixels(tmp_path / "white" / "test" / "00005.png")[:, :32]
    assert np.array_equal(black, 255 - white)


def test_colorize_pairs_grey_with_colour_and_skips_greyscale(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(4):
        _photo(i).save(src / f"c{i}.png")
    _photo(5).convert("L").save(src / "grey_mode.png")
    _photo(6).convert("L").convert("RGB").save(src / "grey_rgb.jpg", quality=80)
    _photo(7).crop((0, 0, 32, 24)).save(src / "wide.png")
    report = colorize(src, tmp_path / "out")
    assert report.written == {"": 5}
    assert len(report.notes) == 1 and "1 output file(s) have non-square" in report.notes[0]
    assert sorted(report.skipped["greyscale input"]) == ["grey_mode.png", "grey_rgb.jpg"]
    pair = _pixels(tmp_path / "out" / "c2.png")
    grey, colour = pair[:, :32], pair[:, 32:]
    assert np.array_equal(colour, np.asarray(_photo(2)))
    assert (grey == grey[..., :1]).all()
    assert np.array_equal(grey[..., 0], np.asarray(_photo(2).convert("L")))
    assert not is_grey_photo(_photo(2))


# --- unpair ------------------------------------------------------------------------------


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()


def test_unpair_shuffles_halves_apart_and_keeps_test_paired(
    paired_root: Path, tmp_path: Path
) -> None:
    report = unpair(paired_root, tmp_path / "u", seed=1)
    assert report.written == {"trainA": 40, "trainB": 40, "testA": 8, "testB": 8, "test": 8}
    pairs, halves_a, halves_b = set(), set(), set()
    for f in sorted((paired_root / "train").glob("*.png")):
        whole = _pixels(f)
        a, b = _digest(whole[:, :32]), _digest(whole[:, 32:])
        pairs.add((a, b))
        halves_a.add(a)
        halves_b.add(b)
    u = tmp_path / "u"
    names = _pngs(u / "trainA")
    assert names == _pngs(u / "trainB") == [f"{k:05d}.png" for k in range(40)]
    got_a = [_digest(_pixels(u / "trainA" / n)) for n in names]
    got_b = [_digest(_pixels(u / "trainB" / n)) for n in names]
    assert set(got_a) == halves_a and set(got_b) == halves_b
    assert not any((a, b) in pairs for a, b in zip(got_a, got_b, strict=True))
    for name in _pngs(paired_root / "test"):
        whole = _pixels(paired_root / "test" / name)
        assert np.array_equal(_pixels(u / "test" / name), whole)
        assert np.array_equal(
            np.concatenate([_pixels(u / "testA" / name), _pixels(u / "testB" / name)], 1), whole
        )
    unpair(paired_root, tmp_path / "same", seed=1)
    assert _snapshot(u) == _snapshot(tmp_path / "same")
    unpair(paired_root, tmp_path / "other", seed=2)
    assert _snapshot(u / "trainA") != _snapshot(tmp_path / "other" / "trainA")


@pytest.mark.parametrize("n", [2, 3, 17])
def test_derangement_orders_never_agree(n: int) -> None:
    for seed in range(20):
        a, b = derangement_orders(n, seed)
        assert sorted(a) == sorted(b) == list(range(n)) and (a != b).all()


# --- check -------------------------------------------------------------------------------


@pytest.fixture
def troubled(paired_root: Path, tmp_path: Path) -> Path:
    """An aligned train/ folder with one of each problem `check` must find."""
    root = tmp_path / "troubled"
    train = root / "train"
    train.mkdir(parents=True)
    for f in sorted((paired_root / "train").glob("*.png"))[:6]:
        (train / f.name).write_bytes(f.read_bytes())
    _photo(1).save(train / "cut.png")
    _truncate(train / "cut.png")
    _photo(2).save(train / "cut_jpeg.jpg", quality=90)
    _truncate(train / "cut_jpeg.jpg")
    (train / "empty.png").write_bytes(b"")
    _photo(3).save(train / "00001.jpg")  # same stem as 00001.png
    _photo(4).save(train / "square.png")  # 32x32: not A|B
    (train / "notes.txt").write_text("not an image")
    return root


def test_check_finds_each_problem(troubled: Path) -> None:
    result = check(troubled, "aligned")
    assert not result.ok
    unreadable = [n.split(" ")[0] for n in result.problems["unreadable or corrupt"]]
    assert sorted(unreadable) == ["train/cut.png", "train/cut_jpeg.jpg", "train/empty.png"]
    assert result.problems["duplicate name (same stem, other extension)"] == ["train/00001.png"]
    bad_shape = result.problems["aligned width != 2 x height"]
    assert sorted(bad_shape) == ["train/00001.jpg (32x32)", "train/square.png (32x32)"]
    (stats,) = result.folders
    assert (stats.name, stats.images, stats.readable, stats.other_files) == ("train", 11, 8, 1)
    assert stats.sizes == {"64x32": 6, "32x32": 2}
    table = "\n".join(result.table())
    assert "PROBLEM unreadable or corrupt (3)" in table and "6 problem(s) found" in table


def test_check_reports_modes_and_16_bit_depth(tmp_path: Path) -> None:
    root = tmp_path / "single"
    root.mkdir()
    _photo(0).save(root / "rgb.png")
    deep = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16)
    Image.fromarray(deep).save(root / "deep.png")  # 16-bit greyscale PNG
    _photo(1).convert("L").save(root / "grey.png")
    result = check(root, "single")
    assert result.ok
    (stats,) = result.folders
    assert stats.bits == {8: 2, 16: 1}
    assert stats.modes["RGB"] == 1 and stats.modes["L"] == 1 and sum(stats.modes.values()) == 3


def test_check_unaligned_needs_both_train_halves(paired_root: Path, tmp_path: Path) -> None:
    u = tmp_path / "u"
    unpair(paired_root, u)
    assert check(u, "unaligned").ok
    for f in (u / "trainB").iterdir():
        f.unlink()
    (u / "trainB").rmdir()
    (u / "testA" / "00005.png").unlink()
    result = check(u, "unaligned")
    assert result.problems == {"missing folder": ["trainB/"]}
    assert [f.name for f in result.folders] == ["trainA", "testA", "testB", "test"]


# --- CLI ---------------------------------------------------------------------------------


def test_cli_check_exit_codes_and_json(
    paired_root: Path, troubled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "data", "check", str(paired_root)]) == 0
    assert "OK: no problems found" in capsys.readouterr().out
    assert main(["-q", "data", "check", str(troubled), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and len(report["problems"]["unreadable or corrupt"]) == 3
    assert main(["-q", "data", "check", str(troubled / "missing")]) == 2


def test_cli_tools_end_to_end(
    photos: Path, paired_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edges"
    assert main(["-q", "data", "edges", str(photos), str(out), "--sigma", "1"]) == 0
    assert "edges: wrote 12 file(s)" in capsys.readouterr().out
    assert main(["-q", "data", "check", str(out)]) == 0
    assert main(["-q", "data", "edges", str(photos), str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["-q", "data", "edges", str(photos), str(out), "--overwrite"]) == 0
    assert main(["-q", "data", "split", str(paired_root), str(tmp_path / "ab")]) == 0
    ab = tmp_path / "ab"
    assert main(["-q", "data", "combine", str(ab / "A"), str(ab / "B"), str(tmp_path / "c")]) == 0
    assert main(["-q", "data", "colorize", str(photos), str(tmp_path / "grey")]) == 0
    assert main(["-q", "data", "unpair", str(tmp_path / "c"), str(tmp_path / "u")]) == 0
    assert main(["-q", "data", "check", str(tmp_path / "u"), "--mode", "unaligned"]) == 0
    assert main(["-q", "data", "colorize", str(photos), str(photos / "x")]) == 2
    assert "inside the input" in capsys.readouterr().err
    assert not (photos / "x").exists()
