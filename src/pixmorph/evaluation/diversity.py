"""Diversity of a multimodal model: how far apart its K outputs for one input are.

Each input is translated in K style codes drawn N(0, I) from a seed; the score is the mean
Euclidean distance between the feature vectors of every pair of its K outputs (the feature
network of FID/KID), averaged over the inputs. A collapsed model, which ignores the style and
gives the same output for every code, scores exactly 0. For scale the summary also gives the
mean distance between outputs of *different* inputs in one style: a model whose styles change
an image as much as its content does reaches that value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pixmorph.errors import ConfigError
from pixmorph.evaluation.inception_weights import FeatureNet
from pixmorph.inference.styles import random_styles, with_style
from pixmorph.inference.translator import Translator, translate


def mean_pairwise_distance(feats: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows of (K, D) features; 0 for K < 2."""
    f = np.asarray(feats, dtype=np.float64)
    if len(f) < 2:
        return 0.0
    d = np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1))  # (K, K)
    i, j = np.triu_indices(len(f), k=1)
    return float(d[i, j].mean())


def _features(net: FeatureNet, images: Tensor) -> np.ndarray:
    device = next(net.parameters()).device
    with torch.no_grad():
        return net(images.to(device)).cpu().double().numpy()


def diversity(
    translator: Translator,
    inputs: Iterable[tuple[str, Tensor]],
    net: FeatureNet,
    styles: int = 4,
    seed: int = 0,
    on_input: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Translate each (name, (C, H, W) image) in `styles` random codes and score their spread."""
    codes = random_styles(translator, styles, seed)
    if styles < 2:
        raise ConfigError(f"--styles {styles}: diversity needs at least 2 styles per input")
    styled = [with_style(translator, code) for code in codes]
    per_image: dict[str, float] = {}
    first_style: list[np.ndarray] = []  # style 0's features of every input: the scale reference
    for name, x in inputs:
        outs = torch.stack([translate(t, x.unsqueeze(0))[0] for t in styled])  # (K, C, H, W)
        feats = _features(net, outs)  # (K, D)
        per_image[name] = mean_pairwise_distance(feats)
        first_style.append(feats[0])
        if on_input:
            on_input(1)
    if not per_image:
        raise ValueError("diversity needs at least one input image")
    return {
        "styles": styles,
        "seed": seed,
        "feature_net": net.describe(),
        "count": len(per_image),
        "diversity": float(np.mean(list(per_image.values()))),
        "collapsed": 0.0,  # the same output for every style
        "between_inputs": mean_pairwise_distance(np.stack(first_style)),
        "per_image": per_image,
    }


def diversity_line(d: dict[str, Any]) -> str:
    """One console line: the score beside a collapsed model's and the between-input scale."""
    return (
        f"diversity ({d['styles']} styles x {d['count']} inputs, mean pairwise feature distance): "
        f"{d['diversity']:.4g}  (collapsed model: {d['collapsed']:.0f}; different inputs: "
        f"{d['between_inputs']:.4g})"
    )
