"""Huge images: every reader refuses a file over the pixel limit before decoding it."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliab_helpers import png_declaring

from pixmorph.cli import main
from pixmorph.data import png16
from pixmorph.data.images import open_image, read_image
from pixmorph.data.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, ImageTooLarge, pixel_limit
from pixmorph.data.tools.check import check
from pixmorph.data.tools.files import decode_file as read_for_tools
from pixmorph.errors import DataError


def refused_quickly(path: Path, read, size: str) -> str:
    """Reading `path` raises ImageTooLarge fast, without allocating the image; its message."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ImageTooLarge) as err:
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0 and peak < 50 * 2**20
    message = str(err.value)
    assert str(path) in message and size in message and MAX_PIXELS_ENV in message
    return message


def test_pillow_bomb_is_a_clear_error(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(100_000, 100_000))  # 8-bit RGB: Pillow's path
    for read in (read_image, open_image, read_for_tools):
        message = refused_quickly(bomb, read, "100000x100000")
        assert str(DEFAULT_MAX_PIXELS) in message


def test_16bit_png_header_is_checked_before_decoding(tmp_path: Path) -> None:
    big = tmp_path / "big16.png"
    big.write_bytes(png_declaring(12_000, 12_000, depth=16, colour=2))  # would be 6.4 GiB
    refused_quickly(big, lambda p: read_image(p, max_pixels=10**8), "12000x12000")
    with pytest.raises(png16.PNGTooLarge):
        png16.read_png(big, max_pixels=10**8)


def test_env_var_and_override_set_the_limit(tmp_path: Path, monkeypatch) -> None:
    small = tmp_path / "s.png"
    Image.new("RGB", (8, 8)).save(small)
    monkeypatch.setenv(MAX_PIXELS_ENV, "64")
    assert read_image(small).shape == (8, 8, 3)  # exactly at the limit
    monkeypatch.setenv(MAX_PIXELS_ENV, "63")
    refused_quickly(small, read_image, "8x8")
    assert read_image(small, max_pixels=64).shape == (8, 8, 3)  # an explicit setting wins
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match=MAX_PIXELS_ENV):
        pixel_limit()


def test_tiff_and_npy_are_checked_from_their_headers(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((20, 30), np.uint16))
    np.save(tmp_path / "a.npy", np.zeros((20, 30, 2), np.float32))
    for name in ("t.tif", "a.npy"):
        refused_quickly(tmp_path / name, lambda p: read_image(p, max_pixels=500), "30x20")
        assert read_image(tmp_path / name, max_pixels=600).shape[:2] == (20, 30)


def test_data_check_reports_the_bomb_and_translate_names_the_flag(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    result = check(root, "single")
    (problem,) = result.problems["unreadable or corrupt"]
    assert "100000x100000" in problem and MAX_PIXELS_ENV in problem
    code = main(
        ["translate", "--checkpoint", "x", "--input", "y", "--output", "z", "--max-pixels", "0"]
    )
    assert code == 2 and "--max-pixels" in capsys.readouterr().err
