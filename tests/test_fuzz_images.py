"""Randomly corrupted image files: a clean DataError or a handled skip, in bounded time and memory."""

from __future__ import annotations

import io
import resource
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliab_helpers import png_chunk, tiny_checkpoint

from pixmorph.cli import main
from pixmorph.data import png16
from pixmorph.data.base import ImageFiles
from pixmorph.data.images import read_image
from pixmorph.data.tools.check import check
from pixmorph.errors import DataError

N_PER_KIND = 100  # mutants per seed format: 4 formats -> 400 files
SECONDS_PER_FILE = 2.0
# Pillow warns about some broken TIFF tags while it reads past them: expected here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
EXTRA_RSS_MB = 400  # the whole fuzz run may not raise the process's peak memory more than this


def seeds() -> dict[str, bytes]:
    """Small valid files of each format the readers take."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)
    out: dict[str, bytes] = {}
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg")):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        out[suffix] = buf.getvalue()
    path = Path(__file__).parent / "__fuzz_seed__.png"  # png16 and tifffile write to files
    try:
        png16.write_png(path, (rgb.astype(np.uint16) * 257)[:, :, :3])
        out["16.png"] = path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
    try:
        import tifffile
    except ImportError:
        return out
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb.astype(np.uint16) * 257, photometric="rgb")
    out[".tif"] = buf.getvalue()
    return out


def huge_ihdr(data: bytes, rng: np.random.Generator) -> bytes:
    """A PNG whose IHDR (CRC fixed) declares a random, often enormous, size."""
    w, h = (int(v) for v in rng.integers(1, 2**31 - 1, 2))
    body = struct.pack(">II", w, h) + data[24:29]
    return data[:8] + png_chunk(b"IHDR", body) + data[33:]


def mutate(data: bytes, rng: np.random.Generator, png: bool) -> bytes:
    """One of: bit flips, a truncation, random bytes in the header, a forged PNG size."""
    kind = int(rng.integers(0, 4 if png else 3))
    buf = bytearray(data)
    if kind == 0:
        for _ in range(int(rng.integers(1, 9))):
            pos = int(rng.integers(0, len(buf)))
            buf[pos] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:
        del buf[int(rng.integers(0, len(buf))) :]
    elif kind == 2:
        for _ in range(int(rng.integers(1, 5))):
            buf[int(rng.integers(0, min(64, len(buf))))] = int(rng.integers(0, 256))
    else:
        return huge_ihdr(data, rng)
    return bytes(buf)


@pytest.fixture(scope="module")
def mutants(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(18)
    files = []
    for suffix, data in seeds().items():
        ext = ".png" if suffix == "16.png" else suffix
        for k in range(N_PER_KIND):
            path = root / f"{suffix.strip('.').replace('.', '_')}_{k:03d}{ext}"
            path.write_bytes(mutate(data, rng, ext == ".png"))
            files.append(path)
    return files


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_readers_give_pixels_or_a_data_error(mutants: list[Path]) -> None:
    start_rss = peak_rss_mb()
    outcomes = {"ok": 0, "error": 0}
    for path in mutants:
        start = time.perf_counter()
        try:
            pixels = read_image(path)
            assert pixels.ndim == 3 and pixels.dtype in (np.uint8, np.uint16, np.float32)
            outcomes["ok"] += 1
        except DataError as e:
            assert path.name in str(e)  # the message names the file
            outcomes["error"] += 1
        assert time.perf_counter() - start < SECONDS_PER_FILE, path.name
    assert peak_rss_mb() - start_rss < EXTRA_RSS_MB
    assert outcomes["ok"] > 0 and outcomes["error"] > len(mutants) // 4  # both paths were taken


def test_data_check_and_training_loader_skip_bad_files(mutants: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    for path in mutants[::3]:
        (folder / path.name).write_bytes(path.read_bytes())
    good = np.full((16, 16, 3), 128, np.uint8)
    Image.fromarray(good).save(folder / "zz_good.png")
    result = check(folder, "single")
    files = sorted(p for p in folder.iterdir())
    bad = result.problems.get("unreadable or corrupt", [])
    assert len(bad) + result.folders[0].readable == len(files) and bad
    loaded = ImageFiles(files, skip_bad=True)  # what data.skip_bad_files=true does
    assert folder / "zz_good.png" in loaded.files and loaded.skipped
    assert all(loaded.load(i).ndim == 3 for i in range(len(loaded)))
    with pytest.raises(DataError, match="skip_bad_files"):
        ImageFiles(files)


def test_translate_cli_on_corrupt_files(
    mutants: list[Path], paired_root: Path, tmp_path: Path, capsys
) -> None:
    ckpt = tiny_checkpoint(paired_root, tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    for path in mutants[::40]:
        (src / path.name).write_bytes(path.read_bytes())
    readable = []
    for p in sorted(src.iterdir()):
        try:
            read_image(p)
            readable.append(p.stem)
        except DataError:
            pass
    args = ["translate", "--checkpoint", str(ckpt), "--input", str(src)]
    code = main([*args, "--output", str(tmp_path / "strict")])
    err = capsys.readouterr().err
    assert code == (0 if len(readable) == len(list(src.iterdir())) else 2)
    assert "Traceback" not in err
    assert main([*args, "--output", str(tmp_path / "out"), "--skip-bad"]) == 0
    written = sorted(p.stem for p in (tmp_path / "out").iterdir())
    assert written == sorted(readable)
