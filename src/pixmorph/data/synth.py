"""Deterministic built-in datasets of synthetic scenes, so the demo and the tests need no download.

A scene is a textured background with 2-6 shapes on it; each shape's class is its kind (disc,
box, triangle, ring). The label map paints each class with a flat colour from `LABEL_COLOURS`.
The photo renders the same pixels with a material fixed per class (base colour, texture, shading)
plus a soft shadow, lit from a random direction near the top-left with a slight colour cast.
Scene ``i`` depends only on ``(seed, i)``; ``NNNNN`` below is ``i`` zero-padded.

`write_paired` -- the pix2pix *aligned* layout, as in the CMP facades data::

    out/train/NNNNN.png   width 2*size: photo (A) on the left | label map (B) on the right
    out/test/NNNNN.png    same; so labels -> photo is direction BtoA

`write_unpaired` -- the CycleGAN layout built from the same scenes, A = label maps, B = photos::

    out/trainA/NNNNN.png  label maps, renumbered from 0 after a seeded shuffle, a few dropped
    out/trainB/NNNNN.png  photos, shuffled and thinned independently: trainA/k, trainB/k differ
    out/testA/NNNNN.png   label map of scene NNNNN
    out/testB/NNNNN.png   photo of scene NNNNN: a true pair with testA/NNNNN
    out/test/NNNNN.png    aligned: label (A) on the left | photo (B) on the right, so AtoB

`write_colour` -- ``out/train/``, ``out/test/`` with photos only, for colorization.
`write_hr` -- ``out/train/``, ``out/test/`` with detail-rich images, for super-resolution.

Scene ``i`` goes to test when ``floor((i + 1) * f) > floor(i * f)`` with ``f = test_fraction``
(every 1/f-th scene), so the split of a scene never depends on ``n``: the files for ``n=10`` are
a prefix of those for ``n=20`` (the shuffled unpaired train halves excepted).
"""

import logging
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from pixmorph.data.synth_scenes import check_scene_size, render_detail, render_pair

_UNPAIR_STREAM = 7  # extra seed word so the unpairing shuffle never reuses a scene's stream
Render = Callable[[np.random.Generator, int], Image.Image]

log = logging.getLogger(__name__)


def _scene_rng(seed: int, i: int) -> np.random.Generator:
    """The generator for scene i: it depends on (seed, i) only, hence the prefix property."""
    return np.random.default_rng([seed, i])


def scene_name(i: int) -> str:
    return f"{i:05d}.png"


def split_scenes(n: int, test_fraction: float) -> tuple[list[int], list[int]]:
    """Scene indices for (train, test): every (1/f)-th index is a test scene, whatever n is."""
    if n < 1:
        raise ValueError(f"n={n}: need at least one image")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction} must be in [0, 1)")
    f = Fraction(test_fraction).limit_denominator(10_000)  # exact arithmetic: no float drift
    test = [i for i in range(n) if math.floor((i + 1) * f) > math.floor(i * f)]
    return sorted(set(range(n)) - set(test)), test


def prepare_folder(out: Path, subdirs: tuple[str, ...], overwrite: bool) -> Path:
    """Check the output folder is empty (or may be overwritten) and create its subfolders."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output path {out} is a file; choose a folder for the dataset")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {out} is not empty; choose an empty folder or pass overwrite=True"
        )
    for sub in subdirs:
        folder = out / sub
        if folder.is_dir():  # stale images from a larger earlier run would join the dataset
            for old in folder.glob("*.png"):
                old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    return out


def _side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    """The aligned layout: one image of width 2*size, left | right."""
    both = Image.new("RGB", (left.width + right.width, left.height))
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    return both


def summary(root: Path, layout: str, counts: dict[str, int], size: int, seed: int) -> dict:
    info = {
        "root": str(root),
        "layout": layout,
        "size": size,
        "seed": seed,
        "counts": counts,
        "paths": {sub: str(root / sub) for sub in counts},
    }
    log.info("wrote %s dataset to %s: %s", layout, root, counts)
    return info


def _write_split(
    out: Path,
    n: int,
    size: int,
    seed: int,
    test_fraction: float,
    overwrite: bool,
    render: Render,
    layout: str,
) -> dict:
    """Write render(scene_rng(seed, i), size) for each i into train/ or test/."""
    check_scene_size(size)
    train, test = split_scenes(n, test_fraction)
    root = prepare_folder(out, ("train", "test"), overwrite)
    for split, indices in (("train", train), ("test", test)):
        for i in indices:
            render(_scene_rng(seed, i), size).save(root / split / scene_name(i), format="PNG")
    return summary(root, layout, {"train": len(train), "test": len(test)}, size, seed)


def write_paired(
    out: Path,
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    test_fraction: float = 0.1,
    *,
    overwrite: bool = False,
) -> dict:
    """Write the aligned pix2pix layout: photo (A) on the left, label map (B) on the right."""

    def render(rng: np.random.Generator, size: int) -> Image.Image:
        return _side_by_side(*render_pair(rng, size))

    return _write_split(out, n, size, seed, test_fraction, overwrite, render, "aligned")


def write_colour(
    out: Path,
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    test_fraction: float = 0.1,
    *,
    overwrite: bool = False,
) -> dict:
    """Write the scene photos alone into train/ and test/, for colorization."""

    def render(rng: np.random.Generator, size: int) -> Image.Image:
        return render_pair(rng, size)[0]

    return _write_split(out, n, size, seed, test_fraction, overwrite, render, "single")


def write_hr(
    out: Path,
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    test_fraction: float = 0.1,
    *,
    overwrite: bool = False,
) -> dict:
    """Write detail-rich single images into train/ and test/, for super-resolution."""
    return _write_split(out, n, size, seed, test_fraction, overwrite, render_detail, "single")


def _unpair(indices: list[int], rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Two shuffled, slightly thinned orders of the scenes that never agree at any position."""
    m = len(indices)
    if m < 2:
        raise ValueError(
            f"{m} training scene(s) cannot be unpaired; raise n or lower test_fraction"
        )
    drop_a, drop_b = rng.integers(1, max(2, m // 20) + 1, size=2) if m >= 4 else (0, 0)
    order_a = rng.permutation(indices)[: m - drop_a].tolist()
    order_b = rng.permutation(indices)[: m - drop_b].tolist()
    for k in range(min(len(order_a), len(order_b))):
        if order_a[k] == order_b[k]:
            # Swapping with the next slot fixes k without creating a clash: scenes are unique.
            j = (k + 1) % len(order_b)
            order_b[k], order_b[j] = order_b[j], order_b[k]
    return order_a, order_b


def write_unpaired(
    out: Path,
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    test_fraction: float = 0.1,
    *,
    overwrite: bool = False,
) -> dict:
    """Write the CycleGAN layout (A = labels, B = photos) with unpaired train halves."""
    check_scene_size(size)
    train, test = split_scenes(n, test_fraction)
    order_a, order_b = _unpair(train, np.random.default_rng([seed, n, _UNPAIR_STREAM]))
    slot_a = {scene: k for k, scene in enumerate(order_a)}
    slot_b = {scene: k for k, scene in enumerate(order_b)}
    root = prepare_folder(out, ("trainA", "trainB", "testA", "testB", "test"), overwrite)
    for i in range(n):
        photo, label = render_pair(_scene_rng(seed, i), size)
        if i in slot_a:
            label.save(root / "trainA" / scene_name(slot_a[i]), format="PNG")
        if i in slot_b:
            photo.save(root / "trainB" / scene_name(slot_b[i]), format="PNG")
        if i not in train:
            label.save(root / "testA" / scene_name(i), format="PNG")
            photo.save(root / "testB" / scene_name(i), format="PNG")
            _side_by_side(label, photo).save(root / "test" / scene_name(i), format="PNG")
    counts = {"trainA": len(order_a), "trainB": len(order_b)}
    counts |= {"testA": len(test), "testB": len(test), "test": len(test)}
    return summary(root, "unaligned", counts, size, seed)
