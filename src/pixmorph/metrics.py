"""Image-quality metrics (L1, PSNR, SSIM, colourfulness) and distribution metrics (FID, KID).

Image metrics take tensors shaped (B, C, H, W) in pixmorph's [-1, 1] convention and return one
float64 value per image, shape (B,). Distribution metrics take feature arrays shaped (N, D) as
numpy arrays or torch tensors and return Python floats. scipy is optional: it is imported lazily
and only used for the matrix square root in FID when present.
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
import torch.nn.functional as F

# ITU-R BT.601 luma for R, G, B in [0, 1], giving Y on the 8-bit "studio swing" [16, 235].
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ValueError unless x and y are two (B, C, H, W) tensors of the same shape."""
    if x.dim() != 4 or x.shape != y.shape:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of the same shape, got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )


def _check_rgb(x: torch.Tensor) -> None:
    """Raise ValueError unless x is a (B, 3, H, W) tensor."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB tensor shaped (B, 3, H, W), got {tuple(x.shape)}")


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, on the scale the images are given in; shape (B,)."""
    _check_pair(x, y)
    return (x.double() - y.double()).abs().mean(dim=(1, 2, 3))


PSNR_CAP = 100.0  # reported PSNR is capped here: identical images give +inf; JSON has none
# whether a higher value of each evaluation metric is better (picks best.pt, reports trends)
HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "l1": False,
    # generators (samples against real images)
    "fid": False,
    "kid": False,
    "precision": True,
    "recall": True,
}


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """PSNR in dB per image, shape (B,); identical images give +inf (callers may clamp)."""
    _check_pair(x, y)
    mse = (x.double() - y.double()).square().mean(dim=(1, 2, 3))
    # mse == 0 divides to +inf on purpose: a finite cap would be an arbitrary choice.
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_window(win_size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd length win_size centred on its middle tap."""
    coords = torch.arange(win_size, dtype=dtype) - (win_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of each channel of (N, C, H, W) x, keeping only 'valid' pixels."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Gaussian-window SSIM (Wang et al. 2004) per image, averaged over channels and pixels."""
    _check_pair(x, y)
    if win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"ssim win_size must be a positive odd number, got {win_size}")
    h, w = x.shape[-2:]
    if h < win_size or w < win_size:
        raise ValueError(
            f"ssim needs images at least {win_size}x{win_size} (win_size), got {h}x{w}; "
            "pass a smaller win_size or larger images"
        )
    # float64 because sigma_xy = E[xy] - mu_x mu_y cancels badly in float32 on smooth images.
    x, y = x.double(), y.double()
    g = _gaussian_window(win_size, sigma, torch.float64).to(x.device)
    b, c = x.shape[:2]
    # One filter call for all five moments: stack them along the channel axis.
    moments = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(c, dim=1)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov_xy = e_xy - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).reshape(b, -1).mean(dim=1)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB in [-1, 1], as used in super-resolution papers: (B, 1, H, W) in [16, 235].

    The result is on the 0..255 scale (white -> 235, black -> 16) and is not rounded to integers;
    quantise the RGB inputs to 8 bits first to reproduce numbers computed on uint8 images.
    """
    _check_rgb(x)
    rgb01 = (x.double() + 1.0) / 2.0
    weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return _Y_OFFSET + (rgb01 * weights).sum(dim=1, keepdim=True)


def _crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop `border` pixels from each side of (B, C, H, W) x."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    h, w = x.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border={border} leaves nothing of a {h}x{w} image")
    return x[..., border : h - border, border : w - border] if border else x


def psnr_y(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """PSNR on the BT.601 Y channel (0..255 scale), `border` pixels cropped per side; shape (B,)."""
    _check_pair(x, y)
    return psnr(
        _crop_border(rgb_to_y(x), border), _crop_border(rgb_to_y(y), border), data_range=255.0
    )


def ssim_y(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """SSIM on the BT.601 Y channel (0..255 scale), `border` pixels cropped per side; shape (B,)."""
    _check_pair(x, y)
    return ssim(
        _crop_border(rgb_to_y(x), border), _crop_border(rgb_to_y(y), border), data_range=255.0
    )


def colourfulness(x: torch.Tensor) -> torch.Tensor:
    """Hasler-Suesstrunk (2003) colourfulness of RGB in [-1, 1], computed on 0..255; shape (B,)."""
    _check_rgb(x)
    rgb = (x.double() + 1.0) * 127.5
    r, g, b = rgb.unbind(dim=1)  # each (B, H, W)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    # Population statistics over the pixels of one image, as in the paper.
    std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return std + 0.3 * mean


def _as_features(feats: np.ndarray | torch.Tensor, name: str = "features") -> np.ndarray:
    """Return (N, D) features as a float64 numpy array, checking shape."""
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().cpu().double().numpy()
    arr = np.asarray(feats, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be shaped (N, D) with N >= 2, got {arr.shape}")
    return arr


def feature_stats(feats: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased (N - 1) covariance (D, D) of (N, D) features, as float64."""
    arr = _as_features(feats)
    return arr.mean(axis=0), np.cov(arr, rowvar=False, ddof=1).reshape(arr.shape[1], -1)


def _trace_sqrt_eigh(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr((s1 s2)^1/2) via the symmetric s1^1/2 s2 s1^1/2, which has the same eigenvalues."""
    w, v = np.linalg.eigh(s1)
    s1_half = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = s1_half @ s2 @ s1_half
    # Clipping tiny negative eigenvalues makes singular (rank-deficient) products harmless.
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def _trace_sqrt_scipy(linalg, s1: np.ndarray, s2: np.ndarray, eps: float) -> float:
    """Tr((s1 s2)^1/2) via scipy's sqrtm, retrying with eps*I added when the product is singular."""
    prod = s1 @ s2
    root = linalg.sqrtm(prod)
    scale = max(np.linalg.norm(prod), np.finfo(np.float64).tiny)
    if not np.isfinite(root).all() or np.linalg.norm(root @ root - prod) / scale > 1e-6:
        offset = eps * np.eye(s1.shape[0])
        root = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    tr = np.trace(root)
    # Rounding can give a complex root with a negligible imaginary part; a large one means the
    # statistics are broken (e.g. NaNs or far too few samples), which we refuse to hide.
    if abs(np.imag(tr)) > 1e-3 * max(1.0, abs(np.real(tr))):
        raise ValueError(f"FID matrix square root has a large imaginary part ({np.imag(tr):.3g})")
    return float(np.real(tr))


def fid_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) between two Gaussians."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"fid_from_stats shapes disagree: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    try:
        linalg = importlib.import_module("scipy.linalg")
    except ImportError:
        linalg = None
    if linalg is not None:
        tr_root = _trace_sqrt_scipy(linalg, sigma1, sigma2, eps)
    else:
        tr_root = _trace_sqrt_eigh(sigma1, sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_root)


def fid(feats_a: np.ndarray | torch.Tensor, feats_b: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) feature sets."""
    mu1, sigma1 = feature_stats(feats_a)
    mu2, sigma2 = feature_stats(feats_b)
    return fid_from_stats(mu1, sigma1, mu2, sigma2)


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cubic polynomial kernel (a.b / d + 1)^3 between the rows of a and b."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size samples a and b under the cubic polynomial kernel."""
    m = a.shape[0]
    k_aa, k_bb, k_ab = _poly_kernel(a, a), _poly_kernel(b, b), _poly_kernel(a, b)
    # Self-similarities k(x, x) on the diagonals are what makes the plain V-statistic biased.
    within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within - 2.0 * k_ab.mean())


def kid(
    feats_a: np.ndarray | torch.Tensor,
    feats_b: np.ndarray | torch.Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of unbiased MMD^2 over random subsets."""
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(f"kid subset_size must be >= 2, got {subset_size}")
    rng = np.random.default_rng(seed)
    scores = np.empty(num_subsets)
    for i in range(num_subsets):
        sub_a = a[rng.choice(a.shape[0], m, replace=False)]
        sub_b = b[rng.choice(b.shape[0], m, replace=False)]
        scores[i] = _mmd2_unbiased(sub_a, sub_b)
    # Spread of the subset estimates (ddof=0 so one subset is allowed), not a standard error.
    return float(scores.mean()), float(scores.std())
