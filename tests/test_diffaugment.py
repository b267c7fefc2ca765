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


# the D calls of one train_step, in order, and which two are the D update's (real, fake) pair
D_CALLS = {"cyclegan": ("d_b", (1, 2)), "cut": ("d_b", (0, 1)), "srgan": ("d", (0, 1))}


@pytest.mark.parametrize("name", sorted(D_CALLS))
def test_methods_with_a_discriminator_augment_real_and_fake_alike(name, tmp_path):
    from pixmorph.config import merge
    from pixmorph.data import synth
    from pixmorph.methods.registry import METHODS
    from pixmorph.methods.settings import build_config

    cls = METHODS[name]
    if cls.data_kind == "hr":
        synth.write_hr(tmp_path / "data", n=4, size=32, seed=0)
    else:
        synth.write_unpaired(tmp_path / "data", n=4, size=32, seed=0)
    tree = {
        "method": name,
        "out": str(tmp_path / "run"),
        "data": {"root": str(tmp_path / "data"), "crop_size": 32, "load_size": 32},
        "train": {"batch_size": 2, "precision": "fp32", "compile": False, "seed": 0},
        "model": {"diffaugment": "cutout"},
    }
    cfg = build_config(merge(tree, cls.tiny_settings))
    torch.manual_seed(0)
    method = Trainer(cfg).build()
    batch = next(iter(torch.utils.data.DataLoader(method.make_dataset(cfg, True), batch_size=2)))
    attr, (i_real, i_fake) = D_CALLS[name]
    d = getattr(method, attr)
    seen = []
    real_forward = d.forward
    d.forward = lambda x: seen.append(x.detach().clone()) or real_forward(x)
    losses = method.train_step(batch, 1)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    holes = [(x == 0).all(dim=1) for x in seen]  # (B, H, W): where the cutout zeroed every channel
    real_holes, fake_holes = holes[i_real], holes[i_fake]
    assert real_holes.flatten(1).any(dim=1).all()  # every image of the pair has a cutout ...
    assert torch.equal(real_holes, fake_holes)  # ... at the same place in real and fake
    assert all(h.any() for h in holes)  # G's view of its fakes is augmented too
    with pytest.raises(ConfigError, match="diffaugment"):
        build_config(merge(tree, {"model": {"diffaugment": "rotate"}}))
