"""The synthetic flood set: determinism, file matching, and true pairs that differ only in water."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixmorph.cli import main
from pixmorph.data.synth_flood import (
    FLOOD_CLASSES,
    FLOOD_PALETTE,
    FOLDERS,
    WATER,
    render_flood_scene,
    write_flood,
)


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _classes(label: np.ndarray) -> np.ndarray:
    """Class index per pixel; fails if a pixel is not a palette colour."""
    hits = (label[:, :, None, :] == FLOOD_PALETTE[None, None]).all(-1)  # (H, W, K)
    assert hits.any(-1).all(), "label map holds colours outside the palette"
    return hits.argmax(-1)


def _stems(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.png"))


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flood")
    write_flood(root, n=12, size=32, seed=0, test_fraction=0.25, sim_fraction=0.25)
    return root


def test_palette_is_one_distinct_colour_per_class():
    assert len(FLOOD_PALETTE) == len(FLOOD_CLASSES)
    assert len({tuple(c) for c in FLOOD_PALETTE}) == len(FLOOD_CLASSES)


def test_layout_counts_and_stems_match(flood: Path):
    assert sorted(p.name for p in flood.iterdir()) == sorted(FOLDERS)
    train = _stems(flood / "trainA")
    test = _stems(flood / "testA")
    assert len(train) == 9 and len(test) == 3 and not set(train) & set(test)
    for folder in ("maskA", "labelA", "trainB", "labelB"):
        assert _stems(flood / folder) == train
    for folder in ("testB", "testmaskA", "testlabelA"):
        assert _stems(flood / folder) == test
    sims = _stems(flood / "simA")
    assert len(sims) == 3
    for folder in ("simmaskA", "simlabelA", "simB"):
        assert _stems(flood / folder) == sims


def test_masks_and_labels_agree_with_their_images(flood: Path):
    for mask_dir, label_dir in (("maskA", "labelA"), ("testmaskA", "testlabelA")):
        for path in (flood / mask_dir).glob("*.png"):
            mask = _load(path)
            assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255}
            classes = _classes(_load(flood / label_dir / path.name))
            assert classes.shape == mask.shape
            # floodable = road or ground only; dry label maps hold no water
            assert np.isin(
                classes[mask > 0], [FLOOD_CLASSES.index("road"), FLOOD_CLASSES.index("ground")]
            ).all()
            assert not (classes == WATER).any()
    for path in (flood / "labelB").glob("*.png"):
        assert (_classes(_load(path)) == WATER).mean() > 0.03  # every B scene is flooded


def test_test_pairs_differ_only_inside_the_mask(flood: Path):
    for path in (flood / "testA").glob("*.png"):
        dry, wet = _load(path).astype(int), _load(flood / "testB" / path.name).astype(int)
        mask = _load(flood / "testmaskA" / path.name) > 0
        assert mask.mean() > 0.03
        assert np.abs(dry - wet)[~mask].max() <= 1  # identical up to rounding
        assert np.abs(dry - wet)[mask].mean() > 10  # the water is visible


def test_water_is_blue_grey_and_sim_style_is_flat():
    rng = np.random.default_rng
    photo = render_flood_scene(rng([3, 1]), 64)
    mask = np.asarray(photo.mask) > 0
    water = np.asarray(photo.flooded).astype(float)[mask]
    r, g, b = water.mean(0)
    assert b > r + 10 and b > g  # bluer than it is red, like murky water under sky
    sim = render_flood_scene(rng([3, 1]), 64, sim=True)
    classes = _classes(np.asarray(sim.label_dry))
    dry_photo, dry_sim = np.asarray(photo.dry).astype(float), np.asarray(sim.dry).astype(float)
    ground = classes == FLOOD_CLASSES.index("ground")
    # a simulated class is flat, a photo class is textured
    assert dry_sim[ground].std(0).max() < 1.0 < 4.0 < dry_photo[ground].std(0).max()


def test_deterministic_and_prefix_stable(tmp_path: Path, flood: Path):
    again = tmp_path / "again"
    write_flood(again, n=12, size=32, seed=0, test_fraction=0.25, sim_fraction=0.25)
    for folder in FOLDERS:
        for path in (flood / folder).glob("*.png"):
            assert np.array_equal(_load(path), _load(again / folder / path.name))
    smaller = tmp_path / "smaller"
    write_flood(smaller, n=4, size=32, seed=0, test_fraction=0.25, sim_fraction=0.25)
    for path in (smaller / "trainA").glob("*.png"):
        assert np.array_equal(_load(path), _load(flood / "trainA" / path.name))
    other = tmp_path / "other"
    write_flood(other, n=4, size=32, seed=1, test_fraction=0.25, sim_fraction=0.25)
    name = "00000.png"
    assert not np.array_equal(_load(other / "trainA" / name), _load(flood / "trainA" / name))


def test_train_b_scenes_are_not_the_a_scenes(flood: Path):
    for path in (flood / "labelA").glob("*.png"):
        a = _classes(_load(path))
        b = _classes(_load(flood / "labelB" / path.name))
        b_dry_part = b != WATER
        assert (a[b_dry_part] != b[b_dry_part]).mean() > 0.02


def test_cli_writes_the_flood_set(tmp_path: Path):
    out = tmp_path / "cli"
    args = ["data", "synth", "--flood", "--out", str(out), "--n", "4", "--size", "16"]
    args += ["--test-fraction", "0.25"]
    assert main(args) == 0
    assert len(_stems(out / "trainB")) == 3 and len(_stems(out / "testB")) == 1
    assert main(args) == 2  # a non-empty folder is refused without --overwrite
