"""Tests for the StyleGAN losses, the weight EMA and k-NN precision/recall."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from pixmorph.evaluation.precision_recall import knn_radii, precision_recall
from pixmorph.losses.stylegan import (
    PathLengthRegularizer,
    d_logistic,
    g_nonsat,
    lazy_adam,
    r1_penalty,
    r1_weight,
)
from pixmorph.nets.ema import ema_beta, update_ema
from pixmorph.nets.stylegan_discriminator import StyleDiscriminator


def test_logistic_losses_match_their_formulas() -> None:
    zero = torch.zeros(4, 1)
    assert g_nonsat(zero).item() == pytest.approx(math.log(2))
    assert d_logistic(zero, zero).item() == pytest.approx(2 * math.log(2))
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    expected = np.mean(np.log1p(np.exp([0.5, -3.0]))) + np.mean(np.log1p(np.exp([-2.0, 1.0])))
    assert d_logistic(real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert g_nonsat(fake).item() == pytest.approx(np.mean(np.log1p(np.exp([-0.5, 3.0]))), rel=1e-6)


def test_r1_matches_a_finite_difference_gradient_norm() -> None:
    torch.manual_seed(0)
    d = StyleDiscriminator(8, img_channels=1, channel_base=64, channel_max=8).double()
    reals = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    penalty = r1_penalty(d, reals)
    # central differences of sum(D(x)) (mbstd couples the batch; autograd sees that too)
    eps, flat = 1e-6, reals.flatten()
    grad = torch.empty_like(flat)
    with torch.no_grad():
        for i in range(flat.numel()):
            step = torch.zeros_like(flat)
            step[i] = eps
            plus = d((flat + step).view_as(reals)).sum()
            minus = d((flat - step).view_as(reals)).sum()
            grad[i] = (plus - minus) / (2 * eps)
    expected = grad.view(4, -1).square().sum(dim=1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-4)
    penalty.backward()  # the penalty trains D: its gradient reaches the weights
    assert d.from_rgb["8"].conv.weight.grad.abs().sum() > 0
    assert r1_weight(10.0, 16) == 80.0


def test_lazy_adam_scales_lr_and_betas() -> None:
    lr, betas = lazy_adam(0.002, (0.0, 0.99), 16)
    c = 16 / 17
    assert lr == pytest.approx(0.002 * c)
    assert betas == pytest.approx((0.0, 0.99**c))
    assert lazy_adam(0.002, (0.0, 0.99), 0) == (0.002, (0.0, 0.99))


def test_path_length_regularizer_tracks_the_mean_in_a_buffer() -> None:
    torch.manual_seed(0)
    b, num_ws, w_dim, c, h = 3, 2, 5, 1, 4
    m = torch.randn(w_dim, c * h * h)
    ws = torch.randn(b, num_ws, w_dim, requires_grad=True)
    images = (ws.sum(dim=1) @ m).view(b, c, h, h)  # a linear "generator": J is known
    reg = PathLengthRegularizer(decay=0.01)
    torch.manual_seed(1)
    penalty = reg(images, ws)
    torch.manual_seed(1)
    y = torch.randn(b, c, h, h).flatten(1) / h  # what the regularizer drew
    grad_w = y @ m.T  # (B, w_dim), the same for every ws layer
    lengths = grad_w.square().sum(dim=1).sqrt()  # sum over w_dim, mean over num_ws equal rows
    assert reg.mean.item() == pytest.approx(0.01 * lengths.mean().item(), rel=1e-5)
    assert penalty.item() == pytest.approx((lengths - reg.mean).square().mean().item(), rel=1e-5)
    # with a non-linear generator the penalty trains it (weighted by weight * interval)
    assert reg.loss(torch.tanh(images), ws).requires_grad
    restored = PathLengthRegularizer()
    restored.load_state_dict(reg.state_dict())
    assert torch.equal(restored.mean, reg.mean)


def test_ema_update_equals_a_hand_computed_average() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = copy.deepcopy(net)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    net.train()(torch.randn(8, 3))  # moves the batch-norm running statistics
    update_ema(ema, net, beta=0.9)
    for name, p in net.named_parameters():
        expected = 0.9 * before[name] + 0.1 * p.detach()
        assert torch.allclose(ema.state_dict()[name], expected, atol=1e-6)
    for name, buf in net.named_buffers():
        assert torch.equal(ema.state_dict()[name], buf)


def test_ema_beta_halves_the_weight_every_half_life() -> None:
    beta = ema_beta(32, 10_000)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    # a ramp-up caps the half-life early in training
    assert ema_beta(32, 10_000, images_seen=1000, rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    with pytest.raises(ValueError, match="half_life_images"):
        ema_beta(32, 0)


def test_precision_recall_identical_disjoint_and_collapsed() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    # mode collapse: fakes crowd around 4 of the 200 real points
    collapsed = np.repeat(real[:4], 10, axis=0) + rng.normal(scale=0.01, size=(40, 8))
    precision, recall = precision_recall(torch.from_numpy(real), torch.from_numpy(collapsed))
    assert precision == 1.0 and recall < 0.1


def test_precision_recall_batches_give_the_same_answer() -> None:
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(60, 4)), rng.normal(loc=0.5, size=(50, 4))
    assert precision_recall(real, fake, batch_size=7) == precision_recall(real, fake)
    radii = knn_radii(torch.from_numpy(real), k=3, batch_size=7)
    dist = np.linalg.norm(real[:, None] - real[None], axis=2)
    assert np.allclose(radii.numpy(), np.sort(dist, axis=1)[:, 3])  # column 0 is the point itself
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(real[:3], fake, k=3)
    with pytest.raises(ValueError, match="width"):
        precision_recall(real, fake[:, :3])
