"""sRGB (D65) <-> CIE L*a*b*, as differentiable torch functions on (B, 3, H, W) tensors.

Two scales are used:
- physical: sRGB in [0, 1]; L* in [0, 100], a* and b* roughly in [-110, 110].
- model: what networks see, about [-1, 1]: RGB as everywhere in pixmorph (2 * rgb - 1),
  L = L* / 50 - 1 and ab = (a*, b*) / AB_SCALE. The sRGB gamut spans a* in [-86, 98] and
  b* in [-108, 95], so AB_SCALE = 110 keeps every displayable colour inside [-1, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor

AB_SCALE = 110.0
L_SCALE = 50.0  # L* / L_SCALE - 1 maps 0..100 to -1..1

# sRGB primaries to CIE XYZ, D65 white (IEC 61966-2-1)
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_WHITE = (0.95047, 1.0, 1.08883)  # D65 reference white, Y = 1
_DELTA = 6.0 / 29.0


def _mix(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply a 3x3 matrix to the channel axis of (B, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(x), x)


# Each power below sees its input clamped to its own branch: torch.where backpropagates through
# both branches, and a root at 0 (or a power of a negative) would turn the gradient into NaN.
def _srgb_to_linear(c: Tensor) -> Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: Tensor) -> Tensor:
    return torch.where(
        c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=0.0031308) ** (1 / 2.4) - 0.055
    )


def _f(t: Tensor) -> Tensor:
    return torch.where(
        t > _DELTA**3, t.clamp(min=_DELTA**3) ** (1 / 3), t / (3 * _DELTA**2) + 4 / 29
    )


def _f_inv(t: Tensor) -> Tensor:
    return torch.where(t > _DELTA, t**3, 3 * _DELTA**2 * (t - 4 / 29))


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB in [0, 1] (B, 3, H, W) -> L*a*b* (B, 3, H, W), D65."""
    rgb = rgb.float()
    m = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)
    xyz = _mix(_srgb_to_linear(rgb), m)
    white = torch.tensor(_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    fx, fy, fz = _f(xyz / white).unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """L*a*b* (B, 3, H, W), D65 -> sRGB clipped to [0, 1] (out-of-gamut colours clip)."""
    lab = lab.float()
    l_star, a_star, b_star = lab.unbind(1)
    fy = (l_star + 16) / 116
    f = torch.stack([fy + a_star / 500, fy, fy - b_star / 200], 1)
    white = torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    xyz = _f_inv(f) * white
    m_inv = torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64))
    return _linear_to_srgb(_mix(xyz, m_inv).clamp(0.0, 1.0)).clamp(0.0, 1.0)


def image_to_lab(x: Tensor) -> Tensor:
    """RGB in model scale [-1, 1] -> (L, a, b) in model scale (see the module docstring)."""
    lab = rgb_to_lab((x.float() + 1.0) / 2.0)
    return torch.cat([lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE], 1)


def lab_to_image(lab: Tensor) -> Tensor:
    """(L, a, b) in model scale -> RGB in model scale [-1, 1]."""
    lab = lab.float()
    phys = torch.cat([(lab[:, :1] + 1.0) * L_SCALE, lab[:, 1:] * AB_SCALE], 1)
    return lab_to_rgb(phys) * 2.0 - 1.0


def greyscale(x: Tensor) -> Tensor:
    """RGB in [-1, 1] with its chroma removed: same L*, a* = b* = 0 (the 'predict grey' image)."""
    lab = image_to_lab(x)
    return lab_to_image(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], 1))
