"""A deterministic synthetic flood set: dry streets (A), flooded streets (B), flood masks, labels.

A scene is a street seen from eye level: sky with clouds above the horizon, a row of buildings
with windows standing on it, a road running to a vanishing point, grass on both sides and a few
trees. The *floodable region* is the road and grass nearer than a (slightly tilted) water line;
trees and buildings never reach below it, so flooding changes exactly the masked pixels. A
flooded scene fills that region with water: blue-grey, murky, with a rippled mirror image of
what stands above the water line. Label maps paint each class in `FLOOD_PALETTE` (`FLOOD_CLASSES` order).
A *simulated* scene is the same kind of street rendered like a game engine would without
texture work: flat saturated colours, no clouds, no grain, flat water.

`write_flood(out, n, size, seed, test_fraction, sim_fraction)` writes (``NNNNN`` = scene index,
zero-padded; every folder of a group holds the same stems, so a mask or label belongs to the
image of the same name)::

    out/trainA/NNNNN.png     dry photo of scene NNNNN
    out/maskA/NNNNN.png      its floodable region: L mode, 255 = may become water, 0 = keep
    out/labelA/NNNNN.png     its label map (no water)
    out/trainB/NNNNN.png     flooded photo of *another* scene (its own random stream): unpaired
    out/labelB/NNNNN.png     label map of that trainB image (water where it is flooded)
    out/simA/NNNNN.png       simulated dry scene (``round(n * sim_fraction)`` of them)
    out/simmaskA/NNNNN.png   its floodable region
    out/simlabelA/NNNNN.png  its label map
    out/simB/NNNNN.png       the same simulated scene flooded: a true pair with simA/NNNNN
    out/testA/NNNNN.png      dry photo of test scene NNNNN
    out/testB/NNNNN.png      the same scene flooded: equal to testA/NNNNN outside testmaskA/NNNNN
    out/testmaskA/NNNNN.png  floodable region of the test scene
    out/testlabelA/NNNNN.png label map of the dry test scene

Train and test scenes share one index space (every 1/f-th index is a test scene, as in
`pixmorph.data.synth`), so train and test stems never collide and the scene of an index depends
only on ``(seed, index)``: a smaller ``n`` writes a prefix of a larger one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from pixmorph.data.synth import prepare_folder, scene_name, split_scenes, summary
from pixmorph.data.synth_scenes import check_scene_size, grid, upsample_noise

FLOOD_CLASSES = ("sky", "building", "road", "ground", "vegetation", "water")
SKY, BUILDING, ROAD, GROUND, VEGETATION, WATER = range(len(FLOOD_CLASSES))
FLOOD_PALETTE = np.array(
    [[70, 130, 180], [150, 60, 40], [128, 64, 128], [200, 200, 60], [40, 160, 40], [0, 60, 255]],
    dtype=np.uint8,
)  # label colour of each class, in FLOOD_CLASSES order
FLOODABLE = (ROAD, GROUND)
# Flat colours of the simulated style: saturated and a little cyan-tinted, one per class.
_SIM_COLOURS = np.array(
    [[120, 200, 255], [210, 140, 110], [90, 95, 120], [80, 190, 90], [30, 140, 70], [40, 130, 230]],
    dtype=np.float32,
)
_FACADES = np.array(
    [[150, 82, 62], [196, 178, 150], [132, 132, 136], [178, 150, 112], [112, 92, 80]],
    dtype=np.float32,
)
# Extra seed words: A scenes, B scenes and simulated scenes come from separate random streams.
_STREAM_A, _STREAM_B, _STREAM_SIM = 11, 12, 13


@dataclass(frozen=True)
class _Building:
    x0: float
    x1: float
    top: float
    facade: int  # index into _FACADES
    cols: int  # window columns
    rows: int  # window rows
    fill: float  # window side as a fraction of its cell


@dataclass(frozen=True)
class _Tree:
    x: float
    base: float  # y of the trunk's foot
    height: float
    blobs: tuple[tuple[float, float, float], ...]  # canopy circles (dx, dy, r) / height


@dataclass(frozen=True)
class _Street:
    """Everything about a scene that does not depend on the pixel size; lengths are fractions."""

    horizon: float
    vx: float  # vanishing point of the road
    road_half: float  # half road width at the bottom edge
    level: float  # water line at the image centre
    tilt: float  # water line slope across the image
    buildings: tuple[_Building, ...]
    trees: tuple[_Tree, ...]
    gain: np.ndarray  # (3,) colour cast times exposure
    clouds: np.ndarray  # (8, 8) coarse noise
    grass: np.ndarray  # (12, 12) coarse noise
    ripple_phase: float


@dataclass(frozen=True)
class FloodScene:
    """One scene rendered dry and flooded, with its floodable mask and both label maps."""

    dry: Image.Image  # RGB
    flooded: Image.Image  # RGB, equal to `dry` outside `mask`
    mask: Image.Image  # L, 255 inside the floodable region
    label_dry: Image.Image  # RGB, FLOOD_PALETTE colours
    label_flooded: Image.Image  # RGB, WATER inside the mask


def _draw_street(rng: np.random.Generator) -> _Street:
    horizon = float(rng.uniform(0.36, 0.5))
    depth = 1.0 - horizon
    level = horizon + depth * float(rng.uniform(0.15, 0.6))
    tilt = float(rng.uniform(-0.06, 0.06))
    buildings, x = [], float(rng.uniform(-0.1, 0.0))
    while x < 1.0:
        width = float(rng.uniform(0.08, 0.26))
        if rng.uniform() > 0.15:  # otherwise a gap shows sky down to the horizon
            buildings.append(
                _Building(
                    x0=x,
                    x1=x + width,
                    top=float(rng.uniform(0.06, horizon - 0.08)),
                    facade=int(rng.integers(len(_FACADES))),
                    cols=int(rng.integers(2, 6)),
                    rows=int(rng.integers(3, 9)),
                    fill=float(rng.uniform(0.4, 0.65)),
                )
            )
        x += width + float(rng.uniform(0.0, 0.03))
    road_half = float(rng.uniform(0.22, 0.42))
    vx = float(rng.uniform(0.38, 0.62))
    trees = []
    lowest = level - abs(tilt) / 2 - 0.01  # tree feet stay above the water line everywhere
    for _ in range(int(rng.integers(0, 4))):
        base = float(rng.uniform(horizon + 0.01, max(lowest, horizon + 0.011)))
        side = 1 if rng.uniform() < 0.5 else -1
        reach = road_half * (base - horizon) / depth  # road half-width at the tree's foot
        tx = vx + side * (reach + float(rng.uniform(0.03, 0.3)))
        height = 0.06 + (base - horizon) * float(rng.uniform(1.5, 3.0))
        blobs = tuple(
            (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.15, 0.15)), rng.uniform(0.2, 0.32))
            for _ in range(4)
        )
        trees.append(_Tree(tx, base, height, blobs))
    gain = (1.0 + rng.uniform(-0.06, 0.06, 3)) * rng.uniform(0.85, 1.1)
    return _Street(
        horizon,
        vx,
        road_half,
        level,
        tilt,
        tuple(buildings),
        tuple(trees),
        gain.astype(np.float32),
        rng.uniform(-1, 1, (8, 8)),
        rng.uniform(-1, 1, (12, 12)),
        float(rng.uniform(0, 2 * math.pi)),
    )


def _layout(s: _Street, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class map (H, W) and the window map (H, W, bool) of a street."""
    classes = np.where(y < s.horizon, SKY, GROUND).astype(np.uint8)
    below = np.clip(y - s.horizon, 0.0, None) / (1.0 - s.horizon)
    classes[(y >= s.horizon) & (np.abs(x - s.vx) <= s.road_half * below)] = ROAD
    windows = np.zeros(x.shape, dtype=bool)
    for b in s.buildings:
        inside = (x >= b.x0) & (x < b.x1) & (y >= b.top) & (y < s.horizon)
        classes[inside] = BUILDING
        u = ((x - b.x0) / (b.x1 - b.x0) * b.cols) % 1.0
        v = ((y - b.top) / (s.horizon - b.top) * b.rows) % 1.0
        pane = (np.abs(u - 0.5) < b.fill / 2) & (np.abs(v - 0.5) < b.fill / 2)
        windows[inside] = pane[inside]
    for t in s.trees:
        trunk = (np.abs(x - t.x) < 0.05 * t.height) & (y <= t.base) & (y > t.base - 0.5 * t.height)
        canopy = np.zeros(x.shape, dtype=bool)
        for dx, dy, r in t.blobs:
            cx, cy = t.x + dx * t.height, t.base - (0.62 + dy) * t.height
            canopy |= (x - cx) ** 2 + (y - cy) ** 2 <= (r * t.height) ** 2
        classes[trunk | canopy] = VEGETATION
        windows[trunk | canopy] = False
    return classes, windows


def _water_line(s: _Street, x: np.ndarray) -> np.ndarray:
    return s.level + s.tilt * (x - 0.5)


def _photo(
    s: _Street, classes: np.ndarray, windows: np.ndarray, x: np.ndarray, y: np.ndarray, rng
) -> np.ndarray:
    """The textured dry photo, float (H, W, 3) in 0..255 before grain."""
    size = x.shape[0]
    fine = rng.uniform(-1, 1, (size, size)).astype(np.float32)  # per-pixel texture
    t = np.clip(y / s.horizon, 0, 1)[..., None]
    sky = np.array([80, 130, 200], np.float32) * (1 - t) + np.array([190, 208, 226]) * t
    cloud = np.clip(1.6 * upsample_noise(s.clouds, size) - 0.3, 0, 1)[..., None]
    sky = sky * (1 - 0.7 * cloud) + 240.0 * 0.7 * cloud
    grass = (
        np.array([92, 128, 58], np.float32)
        * (0.85 + 0.2 * upsample_noise(s.grass, size) + 0.12 * fine)[..., None]
    )
    asphalt = np.array([78, 78, 84], np.float32) * (1.0 + 0.1 * fine)[..., None]
    canvas = np.where((classes == SKY)[..., None], sky, 0.0)
    canvas = np.where((classes == GROUND)[..., None], grass, canvas)
    canvas = np.where((classes == ROAD)[..., None], asphalt, canvas)
    # Dashed centre line: dash length shrinks with distance, as on a real road in perspective.
    dist = np.clip(y - s.horizon, 1e-3, None)
    dashes = ((0.35 / dist) % 1.0 < 0.5) & (np.abs(x - s.vx) < 0.012 * dist / (1 - s.horizon))
    canvas[(classes == ROAD) & dashes] = (225, 215, 160)
    for b in s.buildings:
        inside = classes == BUILDING
        inside &= (x >= b.x0) & (x < b.x1)
        shade = 0.9 + 0.15 * (x - b.x0) / (b.x1 - b.x0) + 0.05 * fine
        canvas[inside] = (_FACADES[b.facade] * shade[..., None])[inside]
    glass = (
        np.array([52, 64, 82], np.float32) * (1.0 + 0.5 * (1 - t)) * (1 + 0.05 * fine[..., None])
    )
    canvas = np.where(windows[..., None], glass, canvas)
    leaf = np.array([46, 96, 40], np.float32) * (0.8 + 0.35 * fine)[..., None]
    bark = np.array([88, 64, 42], np.float32)
    veg = classes == VEGETATION
    canvas[veg] = leaf[veg]
    for tr in s.trees:  # trunks under the canopy circles get the bark colour
        trunk = veg & (np.abs(x - tr.x) < 0.05 * tr.height) & (y > tr.base - 0.35 * tr.height)
        canvas[trunk] = bark
    haze = np.exp(-np.clip(y - s.horizon, 0, None) * 8.0)[..., None] * (y >= s.horizon)[..., None]
    canvas = canvas * (1 - 0.35 * haze) + np.array([190, 208, 226]) * 0.35 * haze
    return canvas * s.gain


def _flat(s: _Street, classes: np.ndarray, windows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The simulated dry render: one flat colour per class, darker flat windows, a sky ramp."""
    canvas = _SIM_COLOURS[classes].copy()  # (H, W, 3)
    canvas[windows] *= 0.55
    sky = classes == SKY
    canvas[sky] *= (0.85 + 0.15 * y / s.horizon)[sky][:, None]
    return canvas


def _water(
    s: _Street, dry: np.ndarray, mask: np.ndarray, x: np.ndarray, y: np.ndarray, sim: bool
) -> np.ndarray:
    """`dry` with water inside `mask`: murky blue-grey plus a rippled mirror of the scene above."""
    size = x.shape[0]
    line = _water_line(s, x)
    dist = np.clip(y - s.horizon, 1e-3, None)
    # Ripples crowd together towards the horizon; they shift the mirrored image sideways.
    wave = np.sin(2 * np.pi * 0.6 / dist + s.ripple_phase + 6.0 * x)
    x_src = np.clip(x + 0.01 * wave, 0, 1)
    y_src = np.clip(2 * line - y, 0, line - 0.5 / size)
    rows = np.clip((y_src * size).astype(int), 0, size - 1)
    cols = np.clip((x_src * size).astype(int), 0, size - 1)
    mirror = dry[rows, cols]  # (H, W, 3)
    if sim:
        water = 0.8 * _SIM_COLOURS[WATER] + 0.2 * mirror
    else:
        img = Image.fromarray(np.clip(mirror, 0, 255).astype(np.uint8))
        mirror = np.asarray(img.filter(ImageFilter.GaussianBlur(size / 160)), dtype=np.float32)
        murk = np.array([66, 92, 118], np.float32) * s.gain
        # A blue-grey body with a dimmed, cooler mirror image on top.
        water = 0.55 * murk + 0.4 * mirror * np.array([0.85, 0.93, 1.05], np.float32)
        glint = np.clip(wave, 0, 1) ** 6 * 45.0  # bright ripple crests
        water = water + glint[..., None]
    out = dry.copy()
    out[mask] = water[mask]
    return out


def render_flood_scene(rng: np.random.Generator, size: int, sim: bool = False) -> FloodScene:
    """Render one street dry and flooded; `sim` gives the flat simulated style."""
    check_scene_size(size)
    s = _draw_street(rng)
    x, y = grid(size)
    classes, windows = _layout(s, x, y)
    mask = np.isin(classes, FLOODABLE) & (y >= _water_line(s, x))
    if sim:
        dry = _flat(s, classes, windows, y)
        flooded = _water(s, dry, mask, x, y, sim=True)
    else:
        dry = _photo(s, classes, windows, x, y, rng)
        flooded = _water(s, dry, mask, x, y, sim=False)
        # Grain is drawn last and shared, so the pair differs only where the water is.
        grain = rng.normal(0.0, 3.0, (size, size, 1)).astype(np.float32)
        dry, flooded = dry + grain, flooded + grain
    wet = classes.copy()
    wet[mask] = WATER

    def rgb(a: np.ndarray) -> Image.Image:
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))

    return FloodScene(
        dry=rgb(dry),
        flooded=rgb(flooded),
        mask=Image.fromarray((mask * 255).astype(np.uint8)),  # 2-D uint8: mode L
        label_dry=Image.fromarray(FLOOD_PALETTE[classes]),
        label_flooded=Image.fromarray(FLOOD_PALETTE[wet]),
    )


FOLDERS = (
    "trainA",
    "maskA",
    "labelA",
    "trainB",
    "labelB",
    "simA",
    "simmaskA",
    "simlabelA",
    "simB",
    "testA",
    "testB",
    "testmaskA",
    "testlabelA",
)


def write_flood(
    out: Path,
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    test_fraction: float = 0.1,
    sim_fraction: float = 0.25,
    *,
    overwrite: bool = False,
) -> dict:
    """Write the flood set (layout in the module docstring); returns a summary with counts."""
    check_scene_size(size)
    if not 0.0 <= sim_fraction <= 1.0:
        raise ValueError(f"sim_fraction={sim_fraction} must be in [0, 1]")
    train, test = split_scenes(n, test_fraction)
    root = prepare_folder(Path(out), FOLDERS, overwrite)

    def save(img: Image.Image, folder: str, i: int) -> None:
        img.save(root / folder / scene_name(i), format="PNG")

    for i in train:
        a = render_flood_scene(np.random.default_rng([seed, i, _STREAM_A]), size)
        save(a.dry, "trainA", i)
        save(a.mask, "maskA", i)
        save(a.label_dry, "labelA", i)
        b = render_flood_scene(np.random.default_rng([seed, i, _STREAM_B]), size)
        save(b.flooded, "trainB", i)
        save(b.label_flooded, "labelB", i)
    n_sim = round(n * sim_fraction)
    for i in range(n_sim):
        sim = render_flood_scene(np.random.default_rng([seed, i, _STREAM_SIM]), size, sim=True)
        save(sim.dry, "simA", i)
        save(sim.mask, "simmaskA", i)
        save(sim.label_dry, "simlabelA", i)
        save(sim.flooded, "simB", i)
    for i in test:
        scene = render_flood_scene(np.random.default_rng([seed, i, _STREAM_A]), size)
        save(scene.dry, "testA", i)
        save(scene.flooded, "testB", i)
        save(scene.mask, "testmaskA", i)
        save(scene.label_dry, "testlabelA", i)
    counts = {f: len(train) for f in ("trainA", "maskA", "labelA", "trainB", "labelB")}
    counts |= {f: n_sim for f in ("simA", "simmaskA", "simlabelA", "simB")}
    counts |= {f: len(test) for f in ("testA", "testB", "testmaskA", "testlabelA")}
    return summary(root, "flood", counts, size, seed)
