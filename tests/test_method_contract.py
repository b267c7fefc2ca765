"""The shared method suite: every registered method (and the template) at tiny size.

A new method gets these tests by its registry line alone; its own test file keeps only what is
particular to it (parameter counts, pool semantics, learning margins).
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from pixmorph.config import merge, read_yaml, set_dotted
from pixmorph.data import synth
from pixmorph.inference.loading import load_generator, load_method
from pixmorph.methods.base import Method
from pixmorph.methods.registry import METHODS
from pixmorph.methods.settings import build_config
from pixmorph.methods.template import Template
from pixmorph.training.trainer import (
    Trainer,
    TrainingInterrupted,
    build_method,
    make_loader,
    seed_everything,
)

CPU = torch.device("cpu")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL: dict[str, type[Method]] = {**METHODS, "template": Template}


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The template joins the registry for these tests only."""
    monkeypatch.setitem(METHODS, "template", Template)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny data root of every data kind."""
    base = tmp_path_factory.mktemp("kinds")
    synth.write_paired(base / "aligned", n=12, size=32, seed=0, test_fraction=1 / 4)
    synth.write_unpaired(base / "unaligned", n=12, size=32, seed=0, test_fraction=1 / 4)
    synth.write_colour(base / "single", n=12, size=32, seed=0, test_fraction=1 / 4)
    synth.write_hr(base / "hr", n=8, size=32, seed=0, test_fraction=1 / 4)
    return {"aligned": base / "aligned", "unaligned": base / "unaligned",
            "single": base / "single", "hr": base / "hr"}  # fmt: skip


def tiny_tree(name: str, roots: dict[str, Path], out: Path, steps: int = 4) -> dict[str, Any]:
    cls = ALL[name]
    data: dict[str, Any] = {"crop_size": 32, "load_size": 36}
    if cls.data_kind != "none":
        data["root"] = str(roots[cls.data_kind])
    tree = {
        "method": name,
        "out": str(out),
        "data": data,
        "train": {
            "steps": steps,
            "batch_size": 2,
            "log_every": 1,
            "sample_every": 2,
            "checkpoint_every": 2,
            "num_samples": 2,
            "seed": 0,
            "precision": "fp32",
            "compile": False,
        },
    }
    return merge(tree, cls.tiny_settings)


def first_batch(method: Method) -> dict[str, Any]:
    cfg = method.cfg
    return next(iter(make_loader(method.make_dataset(cfg, True), cfg, 0, CPU)))


def trained_params(method: Method) -> dict[str, list[torch.nn.Parameter]]:
    return {
        name: [p for g in opt.param_groups for p in g["params"]]
        for name, opt in method.runtime.optimizers.items()
    }


@pytest.mark.parametrize("name", sorted(ALL))
def test_one_step_gives_finite_losses_and_moves_every_optimizer(name, roots, tmp_path):
    cfg = build_config(tiny_tree(name, roots, tmp_path))
    seed_everything(0)
    method = build_method(cfg, CPU)
    before = {k: [p.detach().clone() for p in ps] for k, ps in trained_params(method).items()}
    assert before, f"{name} declares no optimizer"
    losses = method.train_step(first_batch(method), 1)
    assert losses and all(isinstance(v, float) for v in losses.values()), losses
    assert all(math.isfinite(v) for v in losses.values()), losses
    for opt, params in trained_params(method).items():
        moved = [not torch.equal(a, p) for a, p in zip(before[opt], params, strict=True)]
        assert any(moved), f"{name}: optimizer {opt} changed no parameter"


@pytest.mark.parametrize("name", sorted(ALL))
def test_saved_checkpoint_translates_as_the_trained_method(name, roots, tmp_path):
    cfg = build_config(tiny_tree(name, roots, tmp_path, steps=2))
    trainer = Trainer(cfg)
    method = trainer.build()
    trainer.fit(method)
    sampler = method.sampler()
    if sampler is not None:
        z = torch.randn(2, sampler.latent_dim)
        loaded, _ = load_method(tmp_path, CPU)
        assert torch.equal(sampler.module(z, 1.0), loaded.sampler().module(z, 1.0))
        return
    for direction in ALL[name].directions:
        gen = method.inference_generator(direction)
        x = torch.rand(1, gen.in_channels, 32, 32) * 2 - 1
        translator = load_generator(tmp_path, direction=direction, precision="fp32")
        torch.manual_seed(0)
        ours = method.translate(x, direction).clamp(-1, 1)
        torch.manual_seed(0)
        theirs = translator(x)
        assert torch.allclose(ours, theirs, atol=1e-5), f"{name} {direction}"


@pytest.mark.parametrize("name", sorted(ALL))
def test_resume_continues_exactly(name, roots, tmp_path):
    straight = Trainer(build_config(tiny_tree(name, roots, tmp_path / "straight")))
    straight.fit()

    # the same run, stopped by a signal after step 2 and resumed
    stopped = Trainer(build_config(tiny_tree(name, roots, tmp_path / "resumed")))

    def stop_after_two(step: int, *_: Any) -> None:
        if step == 2:
            stopped._stop_signal = signal.SIGTERM

    stopped.progress = stop_after_two
    with pytest.raises(TrainingInterrupted) as stop:
        stopped.fit()
    assert stop.value.step == 2
    Trainer.resume(tmp_path / "resumed").fit()

    a = torch.load(tmp_path / "straight/checkpoints/latest.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed/checkpoints/latest.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), f"{name}: {key} differs after resume"
    for opt, state in a["optimizers"].items():
        for pid, s in state["state"].items():
            for k, v in s.items():
                assert torch.equal(v, b["optimizers"][opt]["state"][pid][k]), (opt, pid, k)


@pytest.mark.parametrize("name", sorted(ALL))
def test_inference_entry_point_gives_the_right_shapes(name, roots, tmp_path):
    cfg = build_config(tiny_tree(name, roots, tmp_path, steps=1))
    Trainer(cfg).fit()
    cls = ALL[name]
    for direction in cls.directions:
        translator = load_generator(tmp_path, direction=direction, precision="fp32")
        scale = translator.generator.scale
        x = torch.rand(2, translator.in_channels, 37, 45) * 2 - 1  # any size: padded to fit
        y = translator(x)
        assert y.shape == (2, translator.out_channels, 37 * scale, 45 * scale)
        assert y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize("name", sorted(ALL))
def test_recipe_and_flags_parse(name, tmp_path):
    cls = ALL[name]
    assert cls.recipe, f"{name} names no recipe"
    cfg = build_config(read_yaml(CONFIGS / cls.recipe))
    assert cfg.method == name
    for flag in cls.flags:  # a flag's setting exists and takes the flag's type
        tree = {"method": name}
        value = cls.tiny_settings
        for part in flag.key.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        if value == {}:
            value = getattr(getattr(cfg, flag.key.split(".")[0]), flag.key.split(".")[1])
        set_dotted(tree, flag.key, value)
        assert build_config(tree) is not None
