"""The built-in synthetic scenes: shapes on a textured background (a label map and its photo),
and detail-rich images for super-resolution. `synth.py` writes them as datasets.

A scene is a textured background with 2-6 shapes on it; each shape's class is its kind (disc,
box, triangle, ring). The label map paints each class with a flat colour from `LABEL_COLOURS`.
The photo renders the same pixels with a material fixed per class (base colour, texture, shading)
plus a soft shadow, lit from a random direction near the top-left with a slight colour cast.
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("background", "disc", "box", "triangle", "ring")
BACKGROUND, DISC, BOX, TRIANGLE, RING = range(len(CLASSES))
# Label colours deliberately differ from the photo colours so translation is more than a copy.
LABEL_COLOURS = np.array(
    [[24, 24, 96], [0, 200, 220], [250, 170, 30], [220, 40, 160], [120, 230, 80]], dtype=np.uint8
)
_MATERIAL = np.array(
    [[168, 156, 138], [196, 62, 48], [52, 96, 186], [70, 150, 72], [214, 178, 60]],
    dtype=np.float32,
)
MIN_SIZE = 16


@dataclass(frozen=True)
class _Shape:
    """One shape; lengths are fractions of the image side, so a scene is resolution-free."""

    kind: int
    cx: float
    cy: float
    r: float  # outer radius (major half-axis for discs and boxes)
    aspect: float  # major / minor half-axis, >= 1
    angle: float  # rotation in radians
    inner: float  # ring hole radius as a fraction of r
    jitter: tuple[float, float, float]  # triangle vertex angle offsets in radians


@dataclass(frozen=True)
class _Scene:
    shapes: tuple[_Shape, ...]
    light: tuple[float, float, float]  # unit vector to the light: x right, y down, z to viewer
    gain: np.ndarray  # (3,) colour cast times exposure
    mottle: np.ndarray  # (6, 6) coarse background noise in [-1, 1]


def _draw_shape(rng: np.random.Generator) -> _Shape:
    """Draw one shape; every field is drawn whatever the kind so the rng stream stays aligned."""
    return _Shape(
        kind=int(rng.integers(DISC, RING + 1)),
        cx=float(rng.uniform(0.15, 0.85)),
        cy=float(rng.uniform(0.15, 0.85)),
        r=float(rng.uniform(0.12, 0.26)),
        aspect=float(rng.uniform(1.0, 1.8)),
        angle=float(rng.uniform(0.0, math.pi)),
        inner=float(rng.uniform(0.45, 0.6)),
        jitter=tuple(float(j) for j in rng.uniform(-0.35, 0.35, 3)),
    )


def _draw_scene(rng: np.random.Generator) -> _Scene:
    """Draw everything about a scene that does not depend on the pixel size."""
    shapes = tuple(_draw_shape(rng) for _ in range(rng.integers(2, 7)))
    azimuth = math.radians(225.0 + rng.uniform(-25.0, 25.0))  # 225 deg = towards the top-left
    elevation = math.radians(rng.uniform(40.0, 60.0))
    light = (
        math.cos(elevation) * math.cos(azimuth),
        math.cos(elevation) * math.sin(azimuth),
        math.sin(elevation),
    )
    gain = (1.0 + rng.uniform(-0.05, 0.05, 3)) * rng.uniform(0.9, 1.1)
    return _Scene(shapes, light, gain.astype(np.float32), rng.uniform(-1, 1, (6, 6)))


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1], each (H, W)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(t, t)


def _local(s: _Shape, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in the shape's own rotated frame."""
    dx, dy = x - s.cx, y - s.cy
    c, sn = math.cos(s.angle), math.sin(s.angle)
    return c * dx + sn * dy, -sn * dx + c * dy


def _triangle(s: _Shape) -> list[tuple[float, float]]:
    """Vertices in the local frame, ordered so the edge functions are positive inside."""
    angles = [k * 2 * math.pi / 3 - math.pi / 2 + j for k, j in enumerate(s.jitter)]
    return [(s.r * math.cos(a), s.r * math.sin(a)) for a in angles]


def _mask(s: _Shape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean (H, W) coverage of the shape."""
    u, v = _local(s, x, y)
    a, b = s.r, s.r / s.aspect
    if s.kind == DISC:
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if s.kind == BOX:
        return (np.abs(u) <= 0.85 * a) & (np.abs(v) <= 0.85 * b)
    if s.kind == RING:
        rho = np.hypot(u, v) / s.r
        return (rho >= s.inner) & (rho <= 1.0)
    p = _triangle(s)
    edges = [
        (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0)
        for (x0, y0), (x1, y1) in zip(p, p[1:] + p[:1], strict=True)
    ]
    return (edges[0] >= 0) & (edges[1] >= 0) & (edges[2] >= 0)


def _material(
    s: _Shape, x: np.ndarray, y: np.ndarray, light: tuple[float, float, float], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Brightness factor and specular highlight, each (H, W), for the shape's class material."""
    lx, ly, lz = light
    flat = math.hypot(lx, ly)
    # Flat shapes brighten linearly towards the light, as if lit by a nearby lamp.
    ramp = 1.0 + 0.3 * ((x - s.cx) * lx + (y - s.cy) * ly) / (flat * s.r)
    u, v = _local(s, x, y)
    spec = np.zeros_like(x)
    if s.kind == DISC:  # a glossy ball: sphere normals from the ellipse, Lambert + highlight
        nu, nv = u / s.r, v * s.aspect / s.r
        nz = np.sqrt(np.clip(1.0 - nu**2 - nv**2, 0.0, 1.0))
        c, sn = math.cos(s.angle), math.sin(s.angle)
        lam = np.clip(nu * (c * lx + sn * ly) + nv * (-sn * lx + c * ly) + nz * lz, 0.0, 1.0)
        return 0.45 + 0.7 * lam, 0.5 * lam**24
    if s.kind == BOX:  # planks: soft stripes along the box's long axis
        period = max(4.0 / size, 0.045)
        return ramp * (0.9 + 0.1 * np.cos(2 * np.pi * v / period)), spec
    if s.kind == TRIANGLE:  # tiles: a checker in the triangle's own frame
        cell = max(3.0 / size, 0.035)
        checker = (np.floor(u / cell) + np.floor(v / cell)) % 2
        return ramp * (0.86 + 0.2 * checker), spec
    # RING: a metal torus with machined grooves
    dx, dy = x - s.cx, y - s.cy
    dist = np.hypot(dx, dy) + 1e-6
    half = 0.5 * (1.0 - s.inner) * s.r
    t = np.clip((dist - (s.r - half)) / half, -1.0, 1.0)
    lam = t * (dx * lx + dy * ly) / dist + np.sqrt(1.0 - t**2) * lz
    lam = np.clip(lam, 0.0, 1.0)
    grooves = 0.93 + 0.07 * np.cos(2 * np.pi * dist / max(3.0 / size, 0.02))
    return (0.5 + 0.65 * lam) * grooves, 0.4 * lam**30


def upsample_noise(noise: np.ndarray, size: int) -> np.ndarray:
    """Smoothly resize a small float grid to (size, size)."""
    img = Image.fromarray(noise.astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC))


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] float map via Pillow, which is much faster than numpy here."""
    img = Image.fromarray(np.round(a * 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255


def render_pair(rng: np.random.Generator, size: int) -> tuple[Image.Image, Image.Image]:
    """Render one scene as (photo, label map), both RGB size x size."""
    check_scene_size(size)
    scene = _draw_scene(rng)
    x, y = grid(size)
    lx, ly, lz = scene.light
    flat = math.hypot(lx, ly)
    classes = np.zeros((size, size), dtype=np.uint8)
    bg = (1.0 + 0.12 * (0.5 - y)) * (1.0 + 0.12 * upsample_noise(scene.mottle, size))
    canvas = _MATERIAL[BACKGROUND] * scene.gain * bg[..., None]  # (H, W, 3)
    shift = 0.035  # shadow offset, away from the light
    for s in scene.shapes:
        shadow = _mask(s, x + shift * lx / flat, y + shift * ly / flat).astype(np.float32)
        canvas *= 1.0 - 0.4 * _blur(shadow, 0.012 * size)[..., None]
        mask = _mask(s, x, y)
        lum, spec = _material(s, x, y, scene.light, size)
        colour = _MATERIAL[s.kind] * scene.gain * lum[..., None] + 255.0 * spec[..., None]
        canvas[mask] = colour[mask]
        classes[mask] = s.kind
    canvas *= (1.0 + 0.3 * ((x - 0.5) * lx + (y - 0.5) * ly) / flat)[..., None]
    photo = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    if size >= 128:  # a touch of lens softness; smaller images would just lose their shapes
        photo = photo.filter(ImageFilter.GaussianBlur(min(size / 512, 0.6)))
    grain = rng.normal(0.0, 3.0, (size, size, 1))  # drawn last: the scene itself is size-free
    photo_arr = np.clip(np.asarray(photo, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(photo_arr), Image.fromarray(LABEL_COLOURS[classes])


def _fractal(rng: np.random.Generator, size: int, coarsest: int = 4) -> np.ndarray:
    """Multi-octave value noise in [0, 1] with detail down to about two pixels."""
    total = np.zeros((size, size), dtype=np.float32)
    cells = coarsest
    while cells <= size // 2:
        total += (
            upsample_noise(rng.uniform(-1, 1, (cells, cells)), size) * (coarsest / cells) ** 0.5
        )
        cells *= 2
    return (total - total.min()) / (np.ptp(total) + 1e-6)


def _pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random fine texture in [0, 1], (H, W), with periods measured in pixels."""
    xp, yp = np.meshgrid(*2 * [np.arange(size, dtype=np.float32)])
    kind = int(rng.integers(5))
    angle, period = rng.uniform(0, math.pi), rng.uniform(2.5, 16.0)
    u = xp * math.cos(angle) + yp * math.sin(angle)
    if kind == 0:  # hard stripes at any angle
        return np.floor(2 * u / period) % 2
    if kind == 1:  # an axis-aligned checker, so even one-pixel cells stay exact
        cell = int(rng.integers(1, 9))
        return (xp // cell + yp // cell) % 2
    if kind == 2:  # a zone plate: rings whose period shrinks to 2.5 px at the image edge
        cx, cy = rng.uniform(0, size, 2)
        return 0.5 + 0.5 * np.cos(np.pi * ((xp - cx) ** 2 + (yp - cy) ** 2) / (2.5 * size))
    if kind == 3:
        return _fractal(rng, size, coarsest=8)
    return 0.5 + 0.5 * np.cos(2 * np.pi * u / period)


def render_detail(rng: np.random.Generator, size: int) -> Image.Image:
    """Render one detail-rich RGB image: fractal background, textured shapes and thin lines."""
    check_scene_size(size)
    x, y = grid(size)
    c0, c1 = rng.uniform(0, 255, (2, 3))
    canvas = c0 + (c1 - c0) * _fractal(rng, size)[..., None]  # (H, W, 3)
    for _ in range(rng.integers(4, 10)):
        mask = _mask(_draw_shape(rng), x, y)
        c0, c1 = rng.uniform(0, 255, (2, 3))
        canvas[mask] = (c0 + (c1 - c0) * _pattern(rng, size)[..., None])[mask]
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 9)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.line(rng.uniform(0, size, 4).tolist(), fill=colour, width=int(rng.integers(1, 4)))
    return img


def check_scene_size(size: int) -> None:
    if size < MIN_SIZE:
        raise ValueError(f"size={size} is too small for a readable scene; use at least {MIN_SIZE}")
