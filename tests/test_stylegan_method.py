"""What is particular to the StyleGAN method: progressive schedule, lazy regularizers, G_ema."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from pixmorph.config import merge
from pixmorph.data import synth
from pixmorph.errors import ConfigError
from pixmorph.losses.stylegan import lazy_adam
from pixmorph.methods.settings import build_config
from pixmorph.methods.stylegan import StyleGAN
from pixmorph.training.trainer import build_method, make_loader, seed_everything

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("single32")
    synth.write_colour(root, n=8, size=32, seed=0, test_fraction=1 / 4)
    return root


def tree(root: Path, out: Path, **model: Any) -> dict[str, Any]:
    base = {
        "method": "stylegan",
        "out": str(out),
        "data": {"root": str(root), "crop_size": 32},
        "train": {"steps": 4, "batch_size": 2, "seed": 0, "precision": "fp32", "compile": False},
    }
    return merge(merge(base, StyleGAN.tiny_settings), {"model": model})


def batch(method: StyleGAN) -> dict[str, Any]:
    return next(iter(make_loader(method.make_dataset(method.cfg, True), method.cfg, 0, CPU)))


def test_progressive_stage_follows_the_images_seen(faces: Path, tmp_path: Path) -> None:
    cfg = build_config(tree(faces, tmp_path, progressive=True, progressive_images=4))
    method = StyleGAN(cfg, CPU, training=False)
    # batch 2, 4 images a phase: 8 stable, fade to 16, 16 stable, fade to 32, then 32 for good
    stages = [method.stage(step) for step in range(1, 12)]
    assert stages == [
        (8, 1.0), (8, 1.0), (16, 0.0), (16, 0.5), (16, 1.0), (16, 1.0),
        (32, 0.0), (32, 0.5), (32, 1.0), (32, 1.0), (32, 1.0),
    ]  # fmt: skip
    plain = StyleGAN(build_config(tree(faces, tmp_path)), CPU, training=False)
    assert plain.stage(1) == (32, 1.0)


def test_progressive_step_mid_fade_trains_both_from_rgbs(faces: Path, tmp_path: Path) -> None:
    cfg = build_config(tree(faces, tmp_path, progressive=True, progressive_images=4))
    seed_everything(0)
    method = build_method(cfg, CPU)
    losses = method.train_step(batch(method), 4)  # step 4: fading 16 in, alpha 0.5
    assert all(math.isfinite(v) for v in losses.values())
    assert method.d.from_rgb["16"].conv.weight.grad.abs().sum() > 0
    assert method.d.from_rgb["8"].conv.weight.grad.abs().sum() > 0
    assert method.d.from_rgb["32"].conv.weight.grad is None  # not reached yet
    panel = method.visuals(batch(method))[0]
    assert panel["g_ema"].shape == (2, 3, 32, 32)  # shown at full size


def test_lazy_regularizers_run_on_their_steps_with_scaled_adam(faces: Path, tmp_path: Path) -> None:
    cfg = build_config(tree(faces, tmp_path, r1_every=2, pl_every=3))
    seed_everything(0)
    method = build_method(cfg, CPU)
    logged = [set(method.train_step(batch(method), step)) for step in range(1, 4)]
    assert ["d_r1" in k for k in logged] == [False, True, False]
    assert ["g_pl" in k for k in logged] == [False, False, True]
    assert method.pl.mean.item() > 0 and "pl.mean" in method.state_dict()
    d_opt, g_opt = method.runtime.optimizers["d"], method.runtime.optimizers["g"]
    assert d_opt.param_groups[0]["lr"] == pytest.approx(lazy_adam(0.002, (0, 0.99), 2)[0])
    assert g_opt.param_groups[0]["betas"][1] == pytest.approx(0.99 ** (3 / 4))


def test_g_ema_is_the_moving_average_of_g(faces: Path, tmp_path: Path) -> None:
    cfg = build_config(tree(faces, tmp_path, ema_half_life_images=20.0))
    seed_everything(0)
    method = build_method(cfg, CPU)
    before = {k: v.clone() for k, v in method.g_ema.state_dict().items()}
    method.train_step(batch(method), 1)
    beta = 0.5 ** (2 / 20.0)
    for name, p in method.g.named_parameters():
        expected = beta * before[name] + (1 - beta) * p.detach()
        assert torch.allclose(method.g_ema.state_dict()[name], expected, atol=1e-6), name
    assert torch.equal(method.g_ema.w_avg, method.g.w_avg)  # buffers copied
    assert method.g.w_avg.abs().sum() > 0


def test_sampler_is_repeatable_and_truncates(faces: Path, tmp_path: Path) -> None:
    method = StyleGAN(build_config(tree(faces, tmp_path)), CPU, training=False)
    method.g_ema.w_avg.normal_()
    sampler = method.sampler()
    assert (sampler.latent_dim, sampler.out_channels, sampler.size) == (16, 3, 32)
    z = torch.randn(3, 16)
    assert torch.equal(sampler.module(z, 1.0), sampler.module(z, 1.0))
    mean = sampler.module(z, 0.0)
    assert torch.allclose(mean, mean[:1].expand_as(mean), atol=1e-5)
    assert set(method.state_dict()) == {k for k in method.state_dict() if k.startswith("g_ema.")}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"data": {"crop_size": 48}}, "power of two"),
        ({"model": {"eval_images": 2}}, "eval_images"),
        ({"model": {"progressive": True, "progressive_start": 64}}, "progressive_start"),
        ({"model": {"r1_every": 0}}, "r1_every"),
    ],
)
def test_resolve_rejects_settings_that_cannot_work(faces, tmp_path, change, match) -> None:
    with pytest.raises(ConfigError, match=match):
        build_config(merge(tree(faces, tmp_path), change))
