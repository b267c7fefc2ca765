"""DiffAugment: one draw transforms real and fake alike, differentiably; pix2pix wires it."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from pixmorph.errors import ConfigError
from pixmorph.losses.diffaugment import Draw, apply, diff_augment, draw, parse_policy
from pixmorph.training.trainer import Trainer

ALL = ("color", "translation", "cutout")


def test_real_and_fake_get_the_same_draw():
    torch.manual_seed(0)
    real = torch.rand(4, 6, 16, 16) * 2 - 1
    fake = torch.rand(4, 6, 16, 16) * 2 - 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        out_real, out_fake = diff_augment(real, fake, policy=ALL, groups=(3, 3))
    torch.manual_seed(7)
    d = draw(ALL, 4, 16, 16)
    assert torch.equal(out_real, apply(real, d, (3, 3)))
    assert torch.equal(out_fake, apply(fake, d, (3, 3)))
    # identical inputs stay identical; a fresh draw differs
    same_a, same_b = diff_augment(real, real.clone(), policy=ALL, groups=(3, 3))
    assert torch.equal(same_a, same_b)
    (again,) = diff_augment(real, policy=ALL, groups=(3, 3))
    assert not torch.equal(again, out_real)


def test_translation_moves_pixels_and_fills_zeros():
    x = torch.arange(16.0).reshape(1, 1, 4, 4) + 1
    d = Draw(shift=torch.tensor([[1, -1]]))  # down one row, left one column
    y = apply(x, d)
    assert torch.equal(y[0, 0, 1:, :3], x[0, 0, :3, 1:])
    assert y[0, 0, 0].abs().sum() == 0 and y[0, 0, :, 3].abs().sum() == 0


def test_cutout_and_gradient():
    torch.manual_seed(1)
    x = torch.rand(8, 3, 32, 32, requires_grad=True)
    d = draw(("cutout",), 8, 32, 32)
    hole = 1 - d.keep  # (B, 1, H, W)
    assert ((hole.sum(dim=(1, 2, 3)) > 0) & (hole.sum(dim=(1, 2, 3)) <= 16 * 16)).all()
    (out,) = diff_augment(x, policy=ALL)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G still gets gradients


def test_colour_measures_each_channel_group_on_its_own():
    torch.manual_seed(2)
    a = torch.rand(2, 3, 8, 8)
    b1, b2 = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8) * 5
    d = draw(("color",), 2, 8, 8)
    out1 = apply(torch.cat([a, b1], 1), d, (3, 3))
    out2 = apply(torch.cat([a, b2], 1), d, (3, 3))
    assert torch.allclose(out1[:, :3], out2[:, :3])  # the input half ignores the output half
    with pytest.raises(ValueError, match="groups"):
        apply(torch.cat([a, b1], 1), d, (3, 2))


def test_policy_is_checked():
    assert parse_policy("color, cutout") == ("color", "cutout")
    assert parse_policy("") == ()
    with pytest.raises(ConfigError, match="model.diffaugment"):
        parse_policy("colour")


def test_pix2pix_trains_with_diffaugment(paired_root, tmp_path):
    cfg = tiny_config(paired_root, tmp_path, model={"diffaugment": "color,translation,cutout"})
    method = Trainer(cfg).build()
    batch = next(iter(torch.utils.data.DataLoader(method.make_dataset(cfg, True), batch_size=2)))
    seen = []
    real_d = method.d.forward
    method.d.forward = lambda x: seen.append(x.detach().clone()) or real_d(x)
    losses = method.train_step(batch, 1)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    fake_ab, real_ab = seen[0], seen[1]
    # the real pair D saw is the augmented real pair, not the plain one; the input halves match
    plain = torch.cat([batch["a"], batch["b"]], 1)
    assert not torch.equal(real_ab, plain)
    assert torch.allclose(fake_ab[:, :3], real_ab[:, :3])
    with pytest.raises(ConfigError, match="diffaugment"):
        tiny_config(paired_root, tmp_path, model={"diffaugment": "rotate"})
