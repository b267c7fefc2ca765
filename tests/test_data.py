"""Aligned data: formats, conversions, augmentation, the sampler, and every bad-input error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_tree
from PIL import Image

from pixmorph.data.aligned import AlignedDataset
from pixmorph.data.images import list_images, open_image, to_pil, to_tensor
from pixmorph.data.load_options import LoadOptions
from pixmorph.data.sampler import StepSampler
from pixmorph.errors import DataError
from pixmorph.methods.settings import build_config


def write_pair(path: Path, h: int = 16, mode: str = "RGB", fmt: str | None = None) -> Path:
    """An aligned image: left half red-ish gradient (A), right half blue (B)."""
    arr = np.zeros((h, 2 * h, 3), np.uint8)
    arr[:, :h, 0] = np.linspace(0, 255, h, dtype=np.uint8)[None, :]
    arr[:, h:, 2] = 200
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def dataset(folder: Path, **kw) -> AlignedDataset:
    args = dict(preprocess_mode="none", crop_size=16, load_size=16, flip=False, train=False)
    return AlignedDataset(folder, **(args | kw))


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tif", ".webp"])
def test_every_format_loads(tmp_path: Path, ext: str):
    write_pair(tmp_path / f"x{ext}")
    item = dataset(tmp_path)[0]
    assert item["a"].shape == (3, 16, 16) and item["b"].shape == (3, 16, 16)
    assert item["b"][2].mean() > 0.4  # the blue half is B


@pytest.mark.parametrize("mode", ["L", "P", "RGBA"])
def test_modes_are_converted(tmp_path: Path, mode: str):
    write_pair(tmp_path / "x.png", mode=mode)
    item = dataset(tmp_path)[0]
    assert item["a"].shape[0] == 3
    grey = dataset(tmp_path, in_channels=1)[0]
    assert grey["a"].shape == (1, 16, 16)


def test_direction_swaps_halves(tmp_path: Path):
    write_pair(tmp_path / "x.png")
    a2b, b2a = dataset(tmp_path)[0], dataset(tmp_path, direction="BtoA")[0]
    assert torch.equal(a2b["a"], b2a["b"]) and torch.equal(a2b["b"], b2a["a"])


def test_flip_and_crop_are_shared_by_both_halves(tmp_path: Path):
    # an image whose A and B halves are identical: any augmentation must keep them identical
    arr = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(np.concatenate([arr, arr], 1)).save(tmp_path / "same.png")
    ds = AlignedDataset(
        tmp_path,
        preprocess_mode="resize_and_crop",
        load_size=36,
        crop_size=32,
        flip=True,
        train=True,
    )
    plain = AlignedDataset(
        tmp_path,
        preprocess_mode="resize_and_crop",
        load_size=36,
        crop_size=32,
        flip=False,
        train=True,
    )
    flips = 0
    for key in range(40):
        item = ds[key]
        assert torch.equal(item["a"], item["b"])
        same, mirrored = (
            torch.equal(item["a"], plain[key]["a"]),
            torch.equal(item["a"], plain[key]["a"].flip(-1)),
        )
        assert same or mirrored  # the same crop, flipped or not
        flips += int(mirrored)
    assert 8 <= flips <= 32  # about half are flipped
    assert torch.equal(ds[5]["a"], ds[5]["a"])  # keyed by the sampler: repeatable


def test_values_are_in_minus_one_one(tmp_path: Path):
    t = to_tensor(Image.new("RGB", (4, 4), (255, 0, 128)))
    assert t[0].max() == 1.0 and t[1].min() == -1.0
    assert to_pil(t).getpixel((0, 0)) == (255, 0, 128)


def test_empty_and_missing_folders(tmp_path: Path):
    with pytest.raises(DataError, match="no images in"):
        list_images(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nope")


def test_truncated_and_unreadable_files_are_named(tmp_path: Path):
    good = write_pair(tmp_path / "good.jpg", h=64)
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg.*truncated"):
        dataset(tmp_path, crop_size=64, load_size=64)
    (tmp_path / "cut.jpg").unlink()
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match=r"text\.png is not a readable image"):
        open_image(tmp_path / "text.png")


def test_wrong_aspect_is_named(tmp_path: Path):
    Image.new("RGB", (30, 16)).save(tmp_path / "odd.png")
    with pytest.raises(DataError, match=r"odd\.png.*width must be 2x height.*30x16"):
        dataset(tmp_path)


def test_image_smaller_than_crop(tmp_path: Path):
    write_pair(tmp_path / "small.png", h=16)
    ds = AlignedDataset(tmp_path, preprocess_mode="crop", crop_size=32, train=True)
    with pytest.raises(DataError, match=r"small\.png.*16x16, smaller than the crop size 32"):
        ds[0]


def test_skip_bad_files_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    write_pair(tmp_path / "a.png")
    write_pair(tmp_path / "b.png")
    Image.new("RGB", (30, 16)).save(tmp_path / "c.png")
    (tmp_path / "d.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match="skip_bad_files"):
        dataset(tmp_path)
    ds = dataset(tmp_path, skip_bad=True)
    assert len(ds) == 2 and len(ds.images.skipped) == 2
    assert "skipped 2 bad image file(s)" in caplog.text


def test_sampler_resumes_exactly_and_shards():
    full = StepSampler(10, seed=3)
    it = iter(full)
    seq = [next(it) for _ in range(35)]
    assert sorted(k % 10 for k in seq[:10]) == list(range(10))  # each epoch is a permutation
    assert seq[:10] != list(range(10))
    resumed = iter(StepSampler(10, seed=3, start=17))
    assert [next(resumed) for _ in range(18)] == seq[17:]
    r0, r1 = (
        iter(StepSampler(10, 3, 0, rank=0, world_size=2)),
        iter(StepSampler(10, 3, 0, rank=1, world_size=2)),
    )
    assert [next(r0) for _ in range(5)] == seq[0:10:2] and [next(r1) for _ in range(5)] == seq[
        1:10:2
    ]


def test_load_options_read_training_settings_and_make_evaluation_deterministic(tmp_path):
    cfg = build_config(
        tiny_tree(
            tmp_path,
            tmp_path / "run",
            data={"load_size": 40, "flip": True, "cache": True, "max_images": 7},
            train={"seed": 3},
        )
    )
    train, held_out = LoadOptions.of(cfg, True), LoadOptions.of(cfg, False)
    assert (train.load_size, train.flip, train.seed, train.cache, train.max_images) == (
        40,
        True,
        3,
        True,
        7,
    )
    assert held_out.load_size == held_out.crop_size == cfg.data.crop_size
    assert not held_out.flip and held_out.preprocess_mode == "resize_and_crop"
    assert "load_size" not in train.kwargs(resize=False) and train.kwargs()["load_size"] == 40
