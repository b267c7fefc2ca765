"""Scores of a generator: FID, KID and precision/recall of its samples against real images.

All four figures live in one feature space (Inception-v3 pool features for published numbers;
the seeded RandomFeatures stand-in in tests). Samples come from seeds seed, seed + 1, ..., so an
evaluation is repeatable and two checkpoints are compared on the same z.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.precision_recall import precision_recall
from pixmorph.inference.generation import seed_latents
from pixmorph.methods.base import Sampler


@torch.no_grad()
def sample_images(
    sampler: Sampler, n: int, seed: int = 0, truncation: float = 1.0, batch_size: int = 16
) -> Iterable[Tensor]:
    """n samples in batches (B, C, H, W) in [-1, 1]; sample i from seed + i."""
    module = sampler.module
    device = next(module.buffers(), next(module.parameters())).device
    for start in range(0, n, batch_size):
        z = seed_latents(
            list(range(seed + start, seed + min(n, start + batch_size))), sampler.latent_dim
        )
        yield module(z.to(device), truncation).float().clamp(-1, 1).cpu()


def generative_scores(
    realism: Realism, fake: np.ndarray, real: np.ndarray, k: int = 3
) -> dict[str, Any]:
    """FID/KID (as Realism computes them) plus k-NN precision and recall, on (N, D) features."""
    out = realism.scores(fake, real)
    if min(len(fake), len(real)) > k:
        out["precision"], out["recall"] = precision_recall(real, fake, k)
        out["pr_k"] = k
    return out


def evaluate_sampler(
    sampler: Sampler,
    real: Iterable[Tensor],
    realism: Realism,
    n: int,
    seed: int = 0,
    truncation: float = 1.0,
    k: int = 3,
    real_features: np.ndarray | None = None,
) -> dict[str, Any]:
    """Generate n images and score them against the real images (or their cached features)."""
    module = sampler.module
    was_training = module.training
    module.eval()
    try:
        fake = realism.features(sample_images(sampler, n, seed, truncation, realism.batch_size))
    finally:
        module.train(was_training)
    real_f = realism.features(real) if real_features is None else real_features
    scores = generative_scores(realism, fake, real_f, k)
    return scores | {"seed": seed, "truncation": truncation}


def headline(scores: dict[str, Any]) -> dict[str, float]:
    """The figures worth a curve: fid, kid, precision, recall (those computed)."""
    return {k: float(scores[k]) for k in ("fid", "kid", "precision", "recall") if k in scores}
