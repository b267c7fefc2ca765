"""Images beyond 8-bit RGB: 16-bit PNG/TIFF, N-channel TIFF and .npy, through train and translate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from pixmorph.cli import main
from pixmorph.data import png16, tiff
from pixmorph.data.aligned import AlignedDataset
from pixmorph.data.images import (
    from_tensor,
    match_channels,
    open_image,
    read_image,
    save_image,
    to_tensor,
)
from pixmorph.errors import DataError
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.inference.loading import load_generator
from pixmorph.methods.registry import get_method
from pixmorph.training.trainer import train


@pytest.fixture
def tifffile():
    """The optional TIFF library (the [tiff] extra, also in [dev])."""
    return pytest.importorskip("tifffile")


def ramp16(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """uint16 pixels that reach both 0 and 65535 and use far more than 256 levels."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 65535, h * w).reshape(h, w, 1)
    arr = (base + rng.integers(0, 4000, (h, w, c))).clip(0, 65535).astype(np.uint16)
    arr[0, 0], arr[-1, -1] = 0, 65535
    return arr


# --- the PNG codec ---------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png16_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    arr = ramp16(37, 53, channels)
    png16.write_png(tmp_path / "x.png", arr)
    assert png16.header(tmp_path / "x.png") == (16, {1: 0, 2: 4, 3: 2, 4: 6}[channels])
    back = png16.read_png(tmp_path / "x.png")
    assert back.dtype == np.uint16 and np.array_equal(back, arr)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_png_decoder_agrees_with_pillow_on_filtered_8bit_files(tmp_path: Path, mode: str) -> None:
    # Pillow filters rows adaptively (mostly Paeth), an independent check of the unfiltering
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:41, 0:67]
    smooth = np.stack([(xx * 3 + yy) % 256, (yy * 5) % 256, xx % 256, (xx + yy) % 256], -1)
    arr = (smooth + rng.integers(0, 9, smooth.shape)).clip(0, 255).astype(np.uint8)
    arr = arr[:, :, : len(mode)]
    Image.fromarray(arr[:, :, 0] if mode == "L" else arr, mode).save(tmp_path / "p.png")
    ours = png16.read_png(tmp_path / "p.png")
    assert np.array_equal(ours.reshape(arr.shape), arr)


def test_pillow_reads_our_16bit_grey(tmp_path: Path) -> None:
    arr = ramp16(20, 30, 1)
    png16.write_png(tmp_path / "g.png", arr)
    with Image.open(tmp_path / "g.png") as img:
        assert img.mode == "I;16"
        assert np.array_equal(np.asarray(img), arr[:, :, 0])


# --- reading each format ---------------------------------------------------------------------
def test_16bit_png_reads_with_its_full_range(tmp_path: Path) -> None:
    for c in (1, 3):
        arr = ramp16(16, 24, c)
        png16.write_png(tmp_path / f"{c}.png", arr)
        pixels = read_image(tmp_path / f"{c}.png")
        assert pixels.dtype == np.uint16 and pixels.shape == (16, 24, c)
        t = to_tensor(pixels)
        assert t.min() == -1.0 and t.max() == 1.0
        assert len(torch.unique(t)) > 256  # not reduced to 8 bits
        assert np.array_equal(from_tensor(t, np.uint16), arr)  # exact both ways


def test_npy_and_tiff_read_any_channel_count(tmp_path: Path, tifffile) -> None:
    arr = ramp16(12, 18, 5)
    np.save(tmp_path / "five.npy", arr)
    np.save(tmp_path / "grey.npy", arr[:, :, 0])
    np.save(tmp_path / "float.npy", arr.astype(np.float32) / 65535)
    tifffile.imwrite(tmp_path / "pages.tif", np.moveaxis(arr, 2, 0), photometric="minisblack")
    tifffile.imwrite(tmp_path / "rgb16.tif", arr[:, :, :3], photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "five.npy"), arr)
    assert read_image(tmp_path / "grey.npy").shape == (12, 18, 1)
    f = read_image(tmp_path / "float.npy")
    assert f.dtype == np.float32 and torch.allclose(to_tensor(f), to_tensor(arr), atol=1e-5)
    assert np.array_equal(read_image(tmp_path / "pages.tif"), arr)  # pages become channels
    assert np.array_equal(read_image(tmp_path / "rgb16.tif"), arr[:, :, :3])


def test_save_image_keeps_depth_and_channels(tmp_path: Path, tifffile) -> None:
    t = to_tensor(ramp16(10, 14, 5))
    for name in ("x.npy", "x.tif"):
        save_image(t, tmp_path / name, np.uint16)
        assert np.array_equal(read_image(tmp_path / name), from_tensor(t, np.uint16))
    save_image(t[:3], tmp_path / "rgb.png", np.uint16)
    assert png16.header(tmp_path / "rgb.png") == (16, 2)
    with pytest.raises(DataError, match="5 channels"):
        save_image(t, tmp_path / "five.png")


def bad_files(root: Path, tifffile) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    good = root / "good.png"
    png16.write_png(good, ramp16(8, 8, 3))
    files = {
        "not an image": root / "text.png",
        "truncated": root / "cut.png",
        "4-D array": root / "cube.npy",
        "int32 array": root / "int.npy",
        "float out of range": root / "hdr.npy",
        "pickled": root / "obj.npy",
        "pages differ": root / "mixed.tif",
    }
    files["not an image"].write_text("hello")
    files["truncated"].write_bytes(good.read_bytes()[:60])
    np.save(files["4-D array"], np.zeros((2, 4, 4, 3), np.uint8))
    np.save(files["int32 array"], np.zeros((4, 4), np.int32))
    np.save(files["float out of range"], np.full((4, 4, 2), 3.5, np.float32))
    np.save(files["pickled"], np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with tifffile.TiffWriter(files["pages differ"]) as w:
        w.write(np.zeros((4, 4), np.uint16))
        w.write(np.zeros((6, 6), np.uint16))
    return files


def test_bad_files_give_errors_naming_them(tmp_path: Path, tifffile) -> None:
    expect = {
        "not an image": "not a readable image",
        "truncated": "truncated",
        "4-D array": r"\(H, W\) or \(H, W, C\)",
        "int32 array": "uint16",
        "float out of range": "rescale the data to 0..1",
        "pickled": "plain numeric array",
        "pages differ": "same size",
    }
    for kind, path in bad_files(tmp_path, tifffile).items():
        with pytest.raises(DataError, match=expect[kind]) as err:
            read_image(path)
        assert str(path) in str(err.value), kind


def test_without_tifffile_pillow_reads_simple_tiffs_and_refuses_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tifffile
) -> None:
    arr = ramp16(8, 10, 4)
    tifffile.imwrite(
        tmp_path / "rgb8.tif", (arr[:, :, :3] >> 8).astype(np.uint8), photometric="rgb"
    )
    tifffile.imwrite(tmp_path / "pages.tif", np.moveaxis(arr, 2, 0), photometric="minisblack")
    monkeypatch.setattr(tiff, "_tifffile", lambda: None)
    assert np.array_equal(read_image(tmp_path / "rgb8.tif"), (arr[:, :, :3] >> 8).astype(np.uint8))
    with pytest.raises(DataError, match=r"pixmorph\[tiff\]"):
        read_image(tmp_path / "pages.tif")


def test_channel_conversion_and_mismatch() -> None:
    rgb = torch.rand(3, 4, 5) * 2 - 1
    grey = match_channels(rgb, 1, "x")
    expect = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert torch.allclose(grey[0], expect, atol=1e-6)
    assert torch.equal(match_channels(grey, 3, "x"), grey.expand(3, -1, -1))
    rgba = match_channels(rgb, 4, "x")
    assert torch.equal(rgba[:3], rgb) and torch.all(rgba[3] == 1)
    with pytest.raises(DataError, match="x has 5 channels but data.in_channels is 3"):
        match_channels(torch.zeros(5, 4, 4), 3, "x")


def test_open_image_maps_16bit_full_range_to_8bit(tmp_path: Path) -> None:
    arr = ramp16(8, 8, 1)
    arr[:] = 1000  # dark: an 8-bit guess of the peak would read this as white
    png16.write_png(tmp_path / "dark.png", arr)
    img = open_image(tmp_path / "dark.png", 3)
    assert img.mode == "RGB" and np.asarray(img).max() == round(1000 / 65535 * 255)


# --- through training and translation -------------------------------------------------------
def write_aligned(root: Path, n: int, make) -> Path:
    """n aligned A|B files made by make(i) -> (path suffix, array (H, 2W, C))."""
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n if split == "train" else 2):
            suffix, arr = make(i)
            path = root / split / f"{i:03d}{suffix}"
            if suffix == ".npy":
                np.save(path, arr)
            else:
                png16.write_png(path, arr)
    return root


def aligned16(i: int) -> tuple[str, np.ndarray]:
    """16-bit grey A | its inverse as B: a mapping the net can start to learn in a few steps."""
    a = ramp16(32, 32, 1, seed=i)
    return ".png", np.concatenate([a, 65535 - a], axis=1)


def aligned5(i: int) -> tuple[str, np.ndarray]:
    """5-channel float A | 5-channel B (channels reversed), stored as one (H, 2W, 5) array."""
    a = ramp16(32, 32, 5, seed=i).astype(np.float32) / 65535
    return ".npy", np.concatenate([a, a[:, :, ::-1]], axis=1)


def test_aligned_dataset_names_a_file_with_the_wrong_channel_count(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "d", 2, aligned5)
    with pytest.raises(DataError, match=r"000\.npy has 5 channels but data.in_channels is 3"):
        AlignedDataset(root / "train", in_channels=3, out_channels=3)


@pytest.mark.parametrize(
    ("make", "channels", "suffix"), [(aligned16, 1, ".png"), (aligned5, 5, ".npy")]
)
def test_train_translate_evaluate_round_trip(tmp_path: Path, make, channels: int, suffix: str):
    root = write_aligned(tmp_path / "data", 6, make)
    data = {"direction": "AtoB", "in_channels": channels, "out_channels": channels}
    cfg = tiny_config(root, tmp_path / "run", data=data)
    ds = get_method("pix2pix").make_dataset(cfg, train=True)
    item = ds[0]
    assert item["a"].shape == item["b"].shape == (channels, 32, 32)
    train(cfg)

    # translate: the file keeps its format and bit depth, at the input's (odd) size
    src = tmp_path / "in"
    src.mkdir()
    _, pair = make(99)
    single = pair[:29, :37]
    if suffix == ".npy":
        np.save(src / "x.npy", single)
    else:
        png16.write_png(src / "x.png", single)
    args = ["--checkpoint", str(tmp_path / "run"), "--input", str(src)]
    assert main(["translate", *args, "--output", str(tmp_path / "out"), "--precision", "fp32"]) == 0
    result = read_image(tmp_path / "out" / f"x{suffix}")
    assert result.shape == (29, 37, channels) and result.dtype == single.dtype
    if suffix == ".png":
        assert png16.header(tmp_path / "out" / "x.png") == (16, 0)
    # the file holds the generator's output at the input's depth (within its quantisation)
    translator = load_generator(tmp_path / "run")
    direct = translator(to_tensor(read_image(src / f"x{suffix}"))[None])[0]
    step = 2 / 65535 if result.dtype == np.uint16 else 1e-6
    assert (to_tensor(result) - direct).abs().max() <= step

    summary = evaluate_paired(
        translator, get_method("pix2pix").make_dataset(cfg, False), tmp_path / "ev"
    )
    assert summary["count"] == 2 and np.isfinite(summary["mean"]["psnr"])
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["count"] == 2
