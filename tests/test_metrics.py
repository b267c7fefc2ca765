"""Tests for pixmorph.metrics against reference computations written here from the definitions."""

import importlib.util
import math
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import ndimage

from pixmorph import metrics

# ---------------------------------------------------------------------------------------------
# Independent reference implementations (numpy / scipy.ndimage), written from the papers.
# ---------------------------------------------------------------------------------------------


def ref_psnr(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """PSNR per image straight from the definition."""
    mse = ((x.astype(np.float64) - y) ** 2).reshape(len(x), -1).mean(axis=1)
    return 10 * np.log10(data_range**2 / mse)


def ref_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """Wang et al. SSIM with an 11x11 sigma-1.5 Gaussian, 'valid' pixels only, per image."""
    # gaussian_filter's radius is int(truncate * sigma + 0.5) = int(5.75) = 5, i.e. 11 taps.
    radius = 5

    def blur(a: np.ndarray) -> np.ndarray:
        full = ndimage.gaussian_filter(a, sigma=1.5, truncate=3.5, mode="constant")
        return full[radius:-radius, radius:-radius]

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for xi, yi in zip(x.astype(np.float64), y.astype(np.float64), strict=True):
        maps = []
        for a, b in zip(xi, yi, strict=True):
            mu_a, mu_b = blur(a), blur(b)
            var_a = blur(a * a) - mu_a**2
            var_b = blur(b * b) - mu_b**2
            cov = blur(a * b) - mu_a * mu_b
            maps.append(
                (2 * mu_a * mu_b + c1)
                * (2 * cov + c2)
                / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
            )
        out.append(np.mean(maps))
    return np.array(out)


def ref_y255(x: np.ndarray) -> np.ndarray:
    """BT.601 Y on 0..255 from RGB in [-1, 1], via 8-bit-style RGB in 0..255."""
    rgb = (x.astype(np.float64) + 1) * 127.5
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255


def ref_colourfulness(x: np.ndarray) -> np.ndarray:
    """Hasler-Suesstrunk colourfulness per image on 0..255 RGB."""
    out = []
    for img in (x.astype(np.float64) + 1) * 127.5:
        r, g, b = img
        rg, yb = r - g, 0.5 * (r + g) - b
        out.append(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return np.array(out)


def true_fid(mu1, s1, mu2, s2) -> float:
    """Closed-form Frechet distance; Tr((S1 S2)^1/2) from the eigenvalues of S1 S2 (all >= 0)."""
    ev = np.linalg.eigvals(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).sum())


def brute_mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, as explicit loops over pairs."""
    m, d = a.shape

    def k(u, v):
        return (sum(float(p) * float(q) for p, q in zip(u, v, strict=True)) / d + 1) ** 3

    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def structured(b: int, c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Images in [-1, 1] with gradients, sinusoids, a checkerboard and a step edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.empty((b, c, h, w))
    for i in range(b):
        for j in range(c):
            f = rng.uniform(2, 6)
            img = 0.4 * np.sin(2 * np.pi * f * xx + j) + 0.3 * (2 * yy - 1)
            img += 0.2 * (((np.arange(h)[:, None] // 3 + np.arange(w)[None, :] // 3) % 2) - 0.5)
            img[:, w // 2 :] += 0.1 * (i + 1)
            out[i, j] = np.clip(img, -1, 1)
    return out


def t(a: np.ndarray) -> torch.Tensor:
    """numpy -> float32 torch tensor, as images arrive in practice."""
    return torch.from_numpy(np.ascontiguousarray(a)).float()


# ---------------------------------------------------------------------------------------------
# L1 / PSNR
# ---------------------------------------------------------------------------------------------


def test_l1_and_psnr_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 3, 8, 9)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), -1, 1).astype(np.float32)
    got_l1 = metrics.l1(t(x), t(y))
    assert got_l1.shape == (3,)
    np.testing.assert_allclose(got_l1, np.abs(x - y.astype(np.float64)).mean(axis=(1, 2, 3)))
    for data_range in (2.0, 1.0):
        got = metrics.psnr(t(x), t(y), data_range=data_range)
        assert got.shape == (3,)
        np.testing.assert_allclose(got, ref_psnr(x, y, data_range), rtol=1e-10)


def test_psnr_identical_is_inf_and_shapes_checked():
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    assert torch.isinf(metrics.psnr(x, x)).all()
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        metrics.psnr(x, x[:, :2])


# ---------------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_ssim_matches_reference_on_random_images(channels):
    rng = np.random.default_rng(channels)
    x = rng.uniform(-1, 1, (2, channels, 17, 23))
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1)
    got = metrics.ssim(t(x), t(y))
    assert got.shape == (2,) and got.dtype == torch.float64
    # Compare on the float32 values the function actually received.
    want = ref_ssim(t(x).double().numpy(), t(y).double().numpy(), 2.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("data_range", [2.0, 255.0])
def test_ssim_matches_reference_on_structured_images(channels, data_range):
    x = structured(2, channels, 32, 28, seed=0)
    # A plausible "restoration": blurred, contrast-reduced, slightly shifted brightness.
    y = np.stack([[ndimage.uniform_filter(c, 3) * 0.8 + 0.05 for c in img] for img in x])
    scale = data_range / 2.0
    got = metrics.ssim(torch.from_numpy(x * scale), torch.from_numpy(y * scale), data_range)
    want = ref_ssim(x * scale, y * scale, data_range)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
    assert (want < 0.99).all()  # the pair is genuinely different, so the comparison means something


def test_ssim_of_identical_images_is_one():
    x = t(structured(2, 3, 16, 16))
    np.testing.assert_allclose(metrics.ssim(x, x), [1.0, 1.0], rtol=0, atol=1e-12)


def test_ssim_drops_monotonically_with_noise():
    x = torch.from_numpy(structured(1, 3, 32, 32))
    noise = torch.from_numpy(np.random.default_rng(5).normal(size=x.shape))
    scores = [metrics.ssim(x, x + s * noise).item() for s in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)]
    assert scores[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores


def test_ssim_rejects_images_smaller_than_window():
    x = torch.zeros(1, 3, 10, 32)
    with pytest.raises(ValueError, match="10x32"):
        metrics.ssim(x, x)
    with pytest.raises(ValueError, match="odd"):
        metrics.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16), win_size=10)


# ---------------------------------------------------------------------------------------------
# Y channel (super-resolution convention)
# ---------------------------------------------------------------------------------------------


def test_rgb_to_y_known_colours():
    colours = torch.tensor(
        [[1, 1, 1], [-1, -1, -1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1], [0, 0, 0]],
        dtype=torch.float32,
    ).view(6, 3, 1, 1)
    y = metrics.rgb_to_y(colours.expand(6, 3, 2, 2))
    assert y.shape == (6, 1, 2, 2)
    want = [235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966, 125.5]
    np.testing.assert_allclose(y[:, 0, 0, 0], want, rtol=1e-12)
    with pytest.raises(ValueError, match="RGB"):
        metrics.rgb_to_y(torch.zeros(1, 1, 4, 4))


def test_psnr_y_and_ssim_y_match_reference_with_border():
    rng = np.random.default_rng(7)
    x = structured(2, 3, 30, 30, seed=3)
    y = np.clip(x + rng.normal(0, 0.05, x.shape), -1, 1)
    border = 4
    yx, yy = ref_y255(x), ref_y255(y)
    crop = (slice(None), slice(border, -border), slice(border, -border))
    want_psnr = ref_psnr(yx[crop], yy[crop], 255.0)
    want_ssim = ref_ssim(yx[crop][:, None], yy[crop][:, None], 255.0)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    np.testing.assert_allclose(metrics.psnr_y(x_t, y_t, border), want_psnr, rtol=1e-10)
    np.testing.assert_allclose(metrics.ssim_y(x_t, y_t, border), want_ssim, rtol=0, atol=1e-8)


def test_border_is_really_ignored():
    x = torch.zeros(1, 3, 20, 20)
    y = x.clone()
    y[..., :3, :] = 1.0  # differ only in the top 3 rows
    assert torch.isfinite(metrics.psnr_y(x, y, border=0)).all()
    assert torch.isinf(metrics.psnr_y(x, y, border=3)).all()
    assert metrics.ssim_y(x, y, border=3).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="border"):
        metrics.psnr_y(x, y, border=10)


# ---------------------------------------------------------------------------------------------
# Colourfulness
# ---------------------------------------------------------------------------------------------


def test_colourfulness_grey_red_and_reference():
    grey = torch.full((1, 3, 8, 8), 0.3)
    assert metrics.colourfulness(grey).item() == pytest.approx(0.0, abs=1e-12)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    # rg = 255, yb = 127.5, no spread: M = 0.3 * sqrt(255^2 + 127.5^2).
    assert metrics.colourfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5))
    x = np.random.default_rng(2).uniform(-1, 1, (3, 3, 9, 7))
    np.testing.assert_allclose(metrics.colourfulness(t(x)), ref_colourfulness(t(x).numpy()))


def test_saturated_image_is_more_colourful_than_desaturated_copy():
    x = torch.from_numpy(structured(2, 3, 16, 16, seed=4))
    grey = x.mean(dim=1, keepdim=True)
    desaturated = grey + 0.4 * (x - grey)
    assert (metrics.colourfulness(x) > metrics.colourfulness(desaturated) + 1.0).all()


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------


def random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def test_fid_of_identical_features_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 8))
    assert metrics.fid(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_sampled_gaussians_matches_closed_form():
    rng = np.random.default_rng(11)
    d = 4
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) + 1.0
    s1, s2 = random_cov(rng, d), 3.0 * random_cov(rng, d)
    want = true_fid(mu1, s1, mu2, s2)
    a = rng.multivariate_normal(mu1, s1, size=20000)
    b = rng.multivariate_normal(mu2, s2, size=20000)
    assert want > 5.0
    assert metrics.fid(a, b) == pytest.approx(want, rel=0.03)


def test_fid_from_stats_exact_for_diagonal_covariances():
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.1, 4, 6), rng.uniform(0.1, 4, 6)
    # For commuting diagonal covariances the trace term is sum (sqrt v1 - sqrt v2)^2.
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = metrics.fid_from_stats(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(want, rel=1e-10)


def test_feature_stats_unbiased_and_torch_equals_numpy():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(50, 5)).astype(np.float32)
    b = (rng.normal(size=(60, 5)) + 0.5).astype(np.float32)
    mu, sigma = metrics.feature_stats(torch.from_numpy(a))
    centred = a.astype(np.float64) - a.mean(axis=0, dtype=np.float64)
    np.testing.assert_allclose(mu, a.mean(axis=0, dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(sigma, centred.T @ centred / (len(a) - 1), rtol=1e-10)
    assert metrics.fid(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        metrics.fid(a, b), rel=1e-12
    )


@pytest.mark.parametrize("n,d", [(400, 6), (12, 20)])  # the second has singular covariances
def test_fid_without_scipy_matches_scipy_route(monkeypatch, n, d):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 1.5 + 0.2
    with_scipy = metrics.fid(a, b)
    # A None entry in sys.modules makes `import scipy...` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)
    spec = importlib.util.spec_from_file_location("metrics_no_scipy", metrics.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)  # importing the module must not need scipy
    without = fresh.fid(a, b)
    assert without == pytest.approx(with_scipy, rel=1e-6)


class _FakeLinalg:
    """Stands in for scipy.linalg; its sqrtm fails (NaNs) on the first call only."""

    def __init__(self):
        self.calls = 0

    def sqrtm(self, a):
        self.calls += 1
        return np.full_like(a, np.nan) if self.calls == 1 else scipy.linalg.sqrtm(a)


def test_fid_retries_with_offset_when_sqrtm_fails(monkeypatch):
    fake = _FakeLinalg()
    monkeypatch.setitem(sys.modules, "scipy.linalg", fake)
    v1, v2 = np.array([1.0, 2.0, 0.0]), np.array([0.5, 0.0, 3.0])  # singular product
    got = metrics.fid_from_stats(np.zeros(3), np.diag(v1), np.ones(3), np.diag(v2))
    assert fake.calls == 2
    # The retry uses (S1 + eps I)(S2 + eps I) for the root only; the traces stay unshifted.
    eps = 1e-6
    want = 3.0 + np.sum(v1 + v2) - 2 * np.sum(np.sqrt((v1 + eps) * (v2 + eps)))
    assert got == pytest.approx(want, rel=1e-10)


def test_fid_refuses_large_imaginary_root(monkeypatch):
    class Complex:
        def sqrtm(self, a):
            return np.eye(len(a)) * (1 + 1j)

    monkeypatch.setitem(sys.modules, "scipy.linalg", Complex())
    with pytest.raises(ValueError, match="imaginary"):
        metrics.fid_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))


def test_fid_shape_errors():
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="disagree"):
        metrics.fid(np.zeros((4, 3)), np.zeros((5, 2)))


# ---------------------------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------------------------


def test_kid_matches_brute_force_on_full_set():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.3
    want = brute_mmd2_unbiased(a, b)
    # subset_size is clipped to 12, so the single subset is all of a and b (in some order).
    mean, std = metrics.kid(a, b, num_subsets=1, subset_size=1000)
    assert mean == pytest.approx(want, rel=1e-10)
    assert std == 0.0
    mean_t, _ = metrics.kid(torch.from_numpy(a), torch.from_numpy(b), 1, 1000)
    assert mean_t == pytest.approx(want, rel=1e-10)


def test_kid_is_unbiased_where_the_plain_estimator_is_not():
    rng = np.random.default_rng(9)
    d, m, subsets = 4, 20, 2000
    a, b = rng.normal(size=(20000, d)), rng.normal(size=(20000, d))  # same distribution
    mean, std = metrics.kid(a, b, num_subsets=subsets, subset_size=m, seed=1)
    stderr = std / math.sqrt(subsets)
    assert abs(mean) < 4 * stderr

    # The biased (V-statistic) MMD^2 keeps the k(x, x) terms and sits well above zero.
    def k(u, v):
        return (u @ v.T / d + 1) ** 3

    biased = []
    for _ in range(200):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    biased_mean = float(np.mean(biased))
    assert biased_mean > 20 * stderr
    assert biased_mean > 10 * np.std(biased) / math.sqrt(len(biased))


def test_kid_separates_different_distributions_and_is_seeded():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8)) + 0.5
    mean, std = metrics.kid(a, b, num_subsets=50, subset_size=100, seed=3)
    assert mean > 10 * std / math.sqrt(50) and mean > 0.05
    assert metrics.kid(a, b, num_subsets=50, subset_size=100, seed=3) == (mean, std)
    assert metrics.kid(a, b, num_subsets=50, subset_size=100, seed=4) != (mean, std)
    with pytest.raises(ValueError, match="feature sizes"):
        metrics.kid(a, b[:, :4])
