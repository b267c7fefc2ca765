"""Every GAN loss mode and the gradient penalty, against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pixmorph.losses.gan import GAN_MODES, d_loss, g_loss, gradient_penalty


def test_vanilla_is_bce_with_logits():
    zero = torch.zeros(2, 1, 3, 3)
    assert d_loss("vanilla", zero, real=True).item() == pytest.approx(math.log(2))
    big = torch.full((1, 1, 2, 2), 20.0)
    assert d_loss("vanilla", big, real=True).item() < 1e-6
    assert g_loss("vanilla", -big).item() == pytest.approx(20.0, rel=1e-4)


def test_lsgan_hinge_wgan_values():
    p = torch.tensor([0.5, -1.5, 2.0])
    assert d_loss("lsgan", p, real=True).item() == pytest.approx(((p - 1) ** 2).mean().item())
    assert d_loss("lsgan", p, real=False).item() == pytest.approx((p**2).mean().item())
    assert g_loss("lsgan", p).item() == pytest.approx(((p - 1) ** 2).mean().item())
    # hinge: relu(1 - p) for real, relu(1 + p) for fake
    assert d_loss("hinge", p, real=True).item() == pytest.approx((0.5 + 2.5 + 0.0) / 3)
    assert d_loss("hinge", p, real=False).item() == pytest.approx((1.5 + 0.0 + 3.0) / 3)
    assert g_loss("hinge", p).item() == pytest.approx(-p.mean().item())
    assert d_loss("wgangp", p, real=True).item() == pytest.approx(-p.mean().item())
    assert d_loss("wgangp", p, real=False).item() == pytest.approx(p.mean().item())


@pytest.mark.parametrize("mode", GAN_MODES)
def test_losses_push_the_right_way(mode: str):
    pred = torch.zeros(4, requires_grad=True)
    d_loss(mode, pred, real=True).backward()
    assert (pred.grad < 0).all()  # D raises its score for real images
    pred.grad = None
    g_loss(mode, pred).backward()
    assert (pred.grad < 0).all()  # G wants its fakes scored as real


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge, wgangp"):
        d_loss("nope", torch.zeros(1), real=True)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = sum(w * x): its input gradient is w everywhere, so GP = (||w|| - 1)^2 exactly
    torch.manual_seed(0)
    lin = nn.Conv2d(3, 1, 4, bias=False)  # 4x4 input -> a single output = <w, x>
    w_norm = lin.weight.norm().item()
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = gradient_penalty(lin, real, fake)
    assert gp.item() == pytest.approx((w_norm - 1.0) ** 2, rel=1e-5)
    gp.backward()  # the penalty itself is differentiable w.r.t. D's weights
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
