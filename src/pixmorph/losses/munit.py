"""Losses of MUNIT and its flood ("climate") variant: pure functions on tensors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.losses.gan import d_loss, g_loss

IGNORE = -100  # cross_entropy's ignore_index: pixels inside the mask


def _keep(mask: Tensor, like: Tensor) -> Tensor:
    """1 where a pixel must be preserved, broadcastable to `like`; mask 1 = may change."""
    if mask.dim() != like.dim():
        raise ValueError(
            f"mask has {mask.dim()} dims and the images {like.dim()}; pass masks as (B, 1, H, W)"
        )
    return 1.0 - mask.to(like.dtype)


def masked_l1(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """mean |(x - y) * (1 - mask)|: an L1 that ignores the pixels allowed to change (mask 1)."""
    return ((x.float() - y.float()) * _keep(mask, x.float())).abs().mean()


def semantic_consistency(logits_fake: Tensor, logits_source: Tensor, mask: Tensor) -> Tensor:
    """Cross-entropy of the translation's labels against the source's, outside the mask.

    The target is the source's argmax label map (no gradient); pixels with mask > 0.5 are
    ignored. The cross-entropy the source itself scores on its own labels is subtracted, so
    identical inputs give exactly 0 and every changed label adds to it. That offset carries no
    gradient, so the generator is trained as by the plain cross-entropy. Logits are
    (B, K, H, W), the mask (B, 1, H, W) or (B, H, W).
    """
    if logits_fake.shape != logits_source.shape:
        raise ValueError(
            f"logit maps differ in shape: {tuple(logits_fake.shape)} vs "
            f"{tuple(logits_source.shape)}; run the same segmenter on both images"
        )
    source = logits_source.detach().float()
    target = source.argmax(1)  # (B, H, W)
    inside = mask.reshape(target.shape) > 0.5  # (B, H, W)
    if bool(inside.all()):  # nothing to compare; cross_entropy would give nan
        return logits_fake.sum() * 0.0
    target = target.masked_fill(inside, IGNORE)
    fake = F.cross_entropy(logits_fake.float(), target, ignore_index=IGNORE)
    own = F.cross_entropy(source, target, ignore_index=IGNORE)
    return fake - own


def ms_d_loss(preds_real: list[Tensor], preds_fake: list[Tensor]) -> Tensor:
    """LSGAN discriminator loss summed over the scales of a multi-scale discriminator."""
    if len(preds_real) != len(preds_fake):
        raise ValueError(f"{len(preds_real)} real scales but {len(preds_fake)} fake scales")
    total = torch.zeros((), device=preds_real[0].device)
    for real, fake in zip(preds_real, preds_fake, strict=True):
        total = total + d_loss("lsgan", real, True) + d_loss("lsgan", fake, False)
    return total


def ms_g_loss(preds_fake: list[Tensor]) -> Tensor:
    """LSGAN generator loss summed over the discriminator's scales."""
    total = torch.zeros((), device=preds_fake[0].device)
    for fake in preds_fake:
        total = total + g_loss("lsgan", fake)
    return total


def domain_classifier_loss(logits_real: Tensor, logits_sim: Tensor) -> Tensor:
    """BCE of a sim-vs-real classifier: real codes labelled 1, simulated codes 0."""
    real = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
    sim = F.binary_cross_entropy_with_logits(logits_sim, torch.zeros_like(logits_sim))
    return (real + sim) / 2


def domain_confusion(logits_real: Tensor, logits_sim: Tensor) -> Tensor:
    """BCE against 1/2 for both kinds of code, minus its floor log 2: 0 when the classifier
    cannot tell them apart.

    Training the content encoder on this (rather than on swapped labels) drives the classifier
    towards chance instead of towards the opposite answer, so the two do not chase each other.
    """
    logits = torch.cat([logits_real, logits_sim]).float()
    half = torch.full_like(logits, 0.5)
    return F.binary_cross_entropy_with_logits(logits, half) - math.log(2.0)
