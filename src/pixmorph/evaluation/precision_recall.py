"""Improved precision and recall (Kynkaanniemi et al. 2019) of generated against real features.

Each set's manifold is the union of balls around its points, each ball reaching the point's
k-th nearest neighbour in the same set. Precision: the share of generated points inside the real
manifold (fidelity). Recall: the share of real points inside the generated manifold (coverage).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def as_features(x: Tensor | np.ndarray, name: str) -> Tensor:
    """A (N, D) float64 tensor on the CPU from a numpy array or tensor."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x.detach().cpu())
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name} features must be a non-empty (N, D) array, got {tuple(t.shape)}")
    return t.to(torch.float64)


def knn_radii(feats: Tensor, k: int = 3, batch_size: int = 1024) -> Tensor:
    """Distance from every point to its k-th nearest other point in the same set: (N,)."""
    n = feats.shape[0]
    if not 0 < k < n:
        raise ValueError(f"precision/recall k must be in [1, {n - 1}] for {n} points, got {k!r}")
    radii = []
    for start in range(0, n, batch_size):
        dist = torch.cdist(feats[start : start + batch_size], feats)  # (b, N)
        radii.append(dist.kthvalue(k + 1, dim=1).values)  # k + 1: the point itself is at 0
    return torch.cat(radii)


def manifold_coverage(
    manifold: Tensor, radii: Tensor, probes: Tensor, batch_size: int = 1024
) -> float:
    """The share of `probes` inside at least one ball (manifold point, radius)."""
    inside = []
    for start in range(0, probes.shape[0], batch_size):
        dist = torch.cdist(probes[start : start + batch_size], manifold)  # (b, N)
        inside.append((dist <= radii[None, :]).any(dim=1))
    return torch.cat(inside).double().mean().item()


def precision_recall(
    real: Tensor | np.ndarray,
    fake: Tensor | np.ndarray,
    k: int = 3,
    batch_size: int = 1024,
) -> tuple[float, float]:
    """(precision, recall) of `fake` (M, D) against `real` (N, D) features, each in [0, 1]."""
    real_t, fake_t = as_features(real, "real"), as_features(fake, "fake")
    if real_t.shape[1] != fake_t.shape[1]:
        raise ValueError(
            f"real and fake features differ in width: {real_t.shape[1]} vs {fake_t.shape[1]}"
        )
    precision = manifold_coverage(real_t, knn_radii(real_t, k, batch_size), fake_t, batch_size)
    recall = manifold_coverage(fake_t, knn_radii(fake_t, k, batch_size), real_t, batch_size)
    return precision, recall
