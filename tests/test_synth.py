"""Tests for the built-in synthetic datasets."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixmorph.data import synth_scenes
from pixmorph.data.synth import (
    render_detail,
    render_pair,
    write_colour,
    write_hr,
    write_paired,
    write_unpaired,
)
from pixmorph.data.synth_scenes import LABEL_COLOURS


def _rng(seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, i])


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _classes(label: np.ndarray) -> np.ndarray:
    """Class index per pixel; fails if a pixel is not a palette colour."""
    hits = (label[:, :, None, :] == LABEL_COLOURS[None, None]).all(-1)  # (H, W, K)
    assert hits.any(-1).all(), "label map holds colours outside the palette"
    return hits.argmax(-1)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


@pytest.mark.parametrize("size", [16, 32, 256])
def test_render_pair_sizes_and_flat_label_palette(size: int) -> None:
    photo, label = render_pair(_rng(0, 3), size)
    assert photo.mode == label.mode == "RGB"
    assert photo.size == label.size == (size, size)
    classes = _classes(_arr(label))
    assert len(np.unique(classes)) >= 2  # background and at least one shape


def test_render_pair_is_deterministic_and_seed_sensitive() -> None:
    a, b = render_pair(_rng(5, 1), 32), render_pair(_rng(5, 1), 32)
    c = render_pair(_rng(6, 1), 32)
    assert np.array_equal(_arr(a[0]), _arr(b[0])) and np.array_equal(_arr(a[1]), _arr(b[1]))
    assert not np.array_equal(_arr(a[1]), _arr(c[1]))


def test_scene_geometry_does_not_depend_on_size() -> None:
    small = _classes(_arr(render_pair(_rng(2, 0), 64)[1]))
    large = _classes(_arr(render_pair(_rng(2, 0), 256)[1]))[2::4, 2::4]  # pixel centres of 64
    assert (small == large).mean() > 0.97


def test_each_label_class_has_its_own_consistent_photo_colour() -> None:
    per_class: dict[int, list[np.ndarray]] = {k: [] for k in range(len(LABEL_COLOURS))}
    pixels, truth = [], []
    for i in range(24):
        photo, label = render_pair(_rng(1, i), 32)
        rgb, classes = _arr(photo).astype(float), _classes(_arr(label))
        for k in per_class:
            if (classes == k).sum() >= 20:
                inside = rgb[classes == k]
                per_class[k].append(inside.mean(0))
                assert inside.std(0).max() > 4.0, "class is a flat recolouring: nothing to learn"
        pixels.append(rgb.reshape(-1, 3))
        truth.append(classes.ravel())
    assert all(len(means) >= 5 for means in per_class.values()), "some class rarely appears"
    centres = np.stack([np.mean(m, 0) for m in per_class.values()])  # (K, 3)
    # Per image, each class's mean photo colour is nearest to its own class centre.
    for k, means in per_class.items():
        nearest = np.linalg.norm(np.stack(means)[:, None] - centres[None], axis=-1).argmin(1)
        assert (nearest == k).all()
    # Spatial agreement: most photo pixels alone already tell their label class.
    dist = np.linalg.norm(np.concatenate(pixels)[:, None] - centres[None], axis=-1)
    assert (dist.argmin(1) == np.concatenate(truth)).mean() > 0.85


def test_write_paired_layout_photo_left_label_right(tmp_path: Path) -> None:
    info = write_paired(tmp_path / "p", n=10, size=32, seed=0)
    assert info["counts"] == {"train": 9, "test": 1}
    assert _names(tmp_path / "p" / "test") == ["00009.png"]
    assert _names(tmp_path / "p" / "train") == [f"{i:05d}.png" for i in range(9)]
    both = _load(tmp_path / "p" / "train" / "00004.png")
    assert both.shape == (32, 64, 3)
    photo, label = render_pair(_rng(0, 4), 32)
    assert np.array_equal(both[:, :32], _arr(photo))
    assert np.array_equal(both[:, 32:], _arr(label))


def test_write_paired_is_deterministic_with_prefix_property(tmp_path: Path) -> None:
    write_paired(tmp_path / "a", n=10, size=16, seed=0)
    write_paired(tmp_path / "b", n=10, size=16, seed=0)
    write_paired(tmp_path / "c", n=20, size=16, seed=0)
    write_paired(tmp_path / "d", n=10, size=16, seed=1)
    for split in ("train", "test"):
        for name in _names(tmp_path / "a" / split):
            data = (tmp_path / "a" / split / name).read_bytes()
            assert data == (tmp_path / "b" / split / name).read_bytes()
            assert data == (tmp_path / "c" / split / name).read_bytes()
    a0 = (tmp_path / "a" / "train" / "00000.png").read_bytes()
    assert a0 != (tmp_path / "d" / "train" / "00000.png").read_bytes()


@pytest.mark.parametrize("writer", [write_paired, write_unpaired, write_colour, write_hr])
def test_writers_refuse_non_empty_folder(tmp_path: Path, writer) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=re.escape(str(out))):
        writer(out, n=6, size=16)
    writer(out, n=6, size=16, test_fraction=0.5, overwrite=True)
    assert (out / "notes.txt").exists()


def test_overwrite_removes_stale_images(tmp_path: Path) -> None:
    write_colour(tmp_path, n=12, size=16)
    write_colour(tmp_path, n=4, size=16, test_fraction=0.5, overwrite=True)
    assert _names(tmp_path / "train") == ["00000.png", "00002.png"]
    assert _names(tmp_path / "test") == ["00001.png", "00003.png"]


def test_write_unpaired_scrambles_train_and_keeps_test_pairs(tmp_path: Path) -> None:
    n, size = 20, 32
    info = write_unpaired(tmp_path, n=n, size=size, seed=3, test_fraction=0.2)
    pairs = [tuple(_arr(im) for im in render_pair(_rng(3, i), size)) for i in range(n)]
    test_ids = [4, 9, 14, 19]
    train_ids = [i for i in range(n) if i not in test_ids]

    def source(path: Path, side: int) -> int:
        found = [i for i in train_ids if np.array_equal(_load(path), pairs[i][side])]
        assert len(found) == 1, f"{path} is not exactly one training scene"
        return found[0]

    names_a, names_b = _names(tmp_path / "trainA"), _names(tmp_path / "trainB")
    assert 12 <= len(names_a) < 16 and 12 <= len(names_b) < 16  # a few dropped per side
    assert info["counts"]["trainA"] == len(names_a)
    from_a = {name: source(tmp_path / "trainA" / name, 1) for name in names_a}  # A = label
    from_b = {name: source(tmp_path / "trainB" / name, 0) for name in names_b}  # B = photo
    assert len(set(from_a.values())) == len(names_a)
    shared = set(names_a) & set(names_b)
    assert all(from_a[name] != from_b[name] for name in shared)
    # Also scrambled against the natural order of the training scenes.
    in_order = [from_a[f"{k:05d}.png"] == train_ids[k] for k in range(len(names_a))]
    assert sum(in_order) <= 3

    for folder in ("testA", "testB", "test"):
        assert _names(tmp_path / folder) == [f"{i:05d}.png" for i in test_ids]
    for i in test_ids:
        photo, label = pairs[i]
        assert np.array_equal(_load(tmp_path / "testA" / f"{i:05d}.png"), label)
        assert np.array_equal(_load(tmp_path / "testB" / f"{i:05d}.png"), photo)
        both = _load(tmp_path / "test" / f"{i:05d}.png")
        assert np.array_equal(both, np.concatenate([label, photo], axis=1))  # A | B


def test_write_unpaired_is_deterministic(tmp_path: Path) -> None:
    write_unpaired(tmp_path / "a", n=12, size=16, seed=0)
    write_unpaired(tmp_path / "b", n=12, size=16, seed=0)
    for folder in ("trainA", "trainB", "testA", "testB", "test"):
        names = _names(tmp_path / "a" / folder)
        assert names == _names(tmp_path / "b" / folder) and names
        for name in names:
            a = (tmp_path / "a" / folder / name).read_bytes()
            assert a == (tmp_path / "b" / folder / name).read_bytes()


def test_write_colour_holds_the_scene_photos(tmp_path: Path) -> None:
    info = write_colour(tmp_path, n=10, size=32, seed=2)
    assert info["counts"] == {"train": 9, "test": 1}
    photo, _ = render_pair(_rng(2, 9), 32)
    assert np.array_equal(_load(tmp_path / "test" / "00009.png"), _arr(photo))


def _psnr_after_2x_round_trip(img: Image.Image) -> float:
    small = img.resize((img.width // 2, img.height // 2), Image.Resampling.BICUBIC)
    back = np.asarray(small.resize(img.size, Image.Resampling.BICUBIC), dtype=float)
    mse = ((back - np.asarray(img, dtype=float)) ** 2).mean()
    return 10 * np.log10(255**2 / mse)


def test_write_hr_layout_determinism_and_fine_detail(tmp_path: Path) -> None:
    info = write_hr(tmp_path / "a", n=10, size=64, seed=0)
    write_hr(tmp_path / "b", n=10, size=64, seed=0)
    assert info["counts"] == {"train": 9, "test": 1}
    for split in ("train", "test"):
        for name in _names(tmp_path / "a" / split):
            path = tmp_path / "a" / split / name
            assert path.read_bytes() == (tmp_path / "b" / split / name).read_bytes()
            assert _load(path).shape == (64, 64, 3)
    # Halving then restoring must lose visible detail, or there is nothing to learn; the smoother
    # scene photos score about 29 dB here, so 25 dB separates the two with a margin.
    psnrs = [_psnr_after_2x_round_trip(render_detail(_rng(0, i), 64)) for i in range(8)]
    assert np.median(psnrs) < 25


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        render_pair(_rng(0, 0), synth_scenes.MIN_SIZE - 1)
    with pytest.raises(ValueError, match="test_fraction"):
        write_paired(tmp_path / "x", n=4, size=16, test_fraction=1.0)
    with pytest.raises(ValueError, match="unpaired"):
        write_unpaired(tmp_path / "y", n=2, size=16, test_fraction=0.5)
