"""Tests for the numpy Canny edge detector and the edges -> photo dataset tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixmorph.data.synth import render_pair
from pixmorph.data.tools.canny import canny, dilate, gaussian_blur, gaussian_kernel
from pixmorph.data.tools.edges import edges


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _blocks(e: np.ndarray) -> int:
    """Number of 2x2 squares fully on: zero for a one-pixel-thin 8-connected curve."""
    return int((e[:-1, :-1] & e[1:, :-1] & e[:-1, 1:] & e[1:, 1:]).sum())


def test_gaussian_blur_matches_scipy_with_mirrored_borders() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    img = np.random.default_rng(0).random((20, 24)).astype(np.float32)
    k = gaussian_kernel(1.5)
    expected = ndimage.correlate1d(
        ndimage.correlate1d(img, k, 0, mode="mirror"), k, 1, mode="mirror"
    )
    assert np.allclose(gaussian_blur(img, 1.5), expected, atol=1e-5)


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_canny_rectangle_is_thin_binary_and_on_the_boundary(sigma: float) -> None:
    img = np.full((64, 64), 0.1, dtype=np.float32)
    img[16:48, 20:44] = 0.9  # boundary lines at x = 20, 44 and y = 16, 48 (pixel edges)
    e = canny(img, sigma=sigma)
    assert e.dtype == bool and _blocks(e) == 0
    ys, xs = np.nonzero(e)
    cx, cy = xs + 0.5, ys + 0.5  # pixel centres
    to_side = np.minimum(np.abs(cx - 20), np.abs(cx - 44))
    to_top = np.minimum(np.abs(cy - 16), np.abs(cy - 48))
    dist = np.minimum(np.where((cy > 16) & (cy < 48), to_side, np.inf), to_top)
    dist = np.minimum(dist, np.where((cx > 20) & (cx < 44), to_top, np.inf))
    corner = (to_side < 3 * sigma) & (to_top < 3 * sigma)
    assert dist[~corner].max() <= 0.5  # a step between pixels: one of the two pixels beside it
    assert dist[corner].max() <= 1.5  # Canny rounds corners over about sigma
    # each row along a vertical side holds exactly one edge pixel per side (thin, no gaps)
    for y in range(16 + round(3 * sigma), 48 - round(3 * sigma)):
        row = np.nonzero(e[y])[0]
        assert len(row) == 2 and row[0] in (19, 20) and row[1] in (43, 44)


def test_canny_disc_with_noise_recalls_the_circle_one_pixel_thin() -> None:
    yy, xx = np.mgrid[0:96, 0:96] + 0.5
    r, c = 30.3, (47.2, 49.1)
    rho = np.hypot(xx - c[0], yy - c[1])
    rgb = np.zeros((96, 96, 3), dtype=np.float32)
    rgb[rho <= r] = (0.7, 0.2, 0.2)
    rgb[rho > r] = (0.2, 0.3, 0.6)
    rgb += np.random.default_rng(0).normal(0, 0.03, rgb.shape).astype(np.float32)
    e = canny(np.clip(rgb, 0, 1), sigma=1.5)
    assert _blocks(e) == 0
    assert np.abs(rho[e] - r).max() <= 1.0  # no false edges from the noise
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    px = np.floor(c[0] + r * np.cos(t)).astype(int)
    py = np.floor(c[1] + r * np.sin(t)).astype(int)
    recall = dilate(e)[py, px].mean()
    assert recall >= 0.97  # measured 1.0


def test_canny_finds_equal_brightness_colour_edges_and_nothing_on_flat_images() -> None:
    img = np.zeros((32, 32, 3), dtype=np.float32)
    img[:, :16] = (0.6, 0.3, 0.3)
    img[:, 16:] = (0.3, 0.45, 0.35)  # about the same luma, different colour
    assert canny(img, sigma=1.0)[4:-4].any(axis=0).nonzero()[0].tolist() in ([15], [16])
    assert not canny(np.full((32, 32), 0.5, dtype=np.float32)).any()


def test_edges_tool_writes_edges_left_photo_right_with_measured_recall(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    labels = {}
    for i in range(6):
        photo, label = render_pair(np.random.default_rng([3, i]), 64)
        photo.save(src / f"{i}.png")
        labels[i] = np.asarray(label).astype(np.int64)
    report = edges(src, tmp_path / "out", sigma=1.0)
    assert report.written == {"": 6} and not report.skipped
    recalls, precisions = [], []
    for i, lab in labels.items():
        pair = _pixels(tmp_path / "out" / f"{i}.png")
        assert pair.shape == (64, 128, 3)
        left, right = pair[:, :64], pair[:, 64:]
        assert np.array_equal(right, _pixels(src / f"{i}.png"))
        assert set(np.unique(left)) <= {0, 255} and (left == left[..., :1]).all()
        e = left[..., 0] == 0  # black edges on white
        assert 0.01 < e.mean() < 0.25 and _blocks(e) == 0
        code = lab[..., 0] * 65536 + lab[..., 1] * 256 + lab[..., 2]
        b = np.zeros(code.shape, dtype=bool)
        b[:, 1:] |= code[:, 1:] != code[:, :-1]
        b[1:] |= code[1:] != code[:-1]
        recalls.append((b & dilate(dilate(e))).sum() / b.sum())
        precisions.append((e & dilate(dilate(b))).sum() / e.sum())
    # measured: recall 1.0 on all six, precision 0.96 mean (0.95 worst)
    assert np.mean(recalls) >= 0.95 and min(recalls) >= 0.9
    assert np.mean(precisions) >= 0.9 and min(precisions) >= 0.85
