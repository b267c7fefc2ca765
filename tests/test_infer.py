"""Inference from Python: load_generator and translate on PIL images and tensors."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from PIL import Image

import pixmorph
from pixmorph.training.trainer import Trainer


@pytest.fixture(scope="module")
def translator(paired_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("infer_run")
    Trainer(tiny_config(paired_root, run, train={"steps": 2})).fit()
    return pixmorph.load_generator(run)


def test_generator_loads_without_architecture_flags(translator):
    assert translator.config.model.generator.arch == "unet_32"
    assert translator.generator.size_multiple == 32 and translator.step == 2
    assert not translator.generator.module.training


def test_translate_pil_images_of_any_size(translator):
    imgs = [
        Image.new("RGB", (45, 33), "red"),
        Image.new("RGB", (32, 32), "blue"),
        Image.new("RGB", (45, 33), "green"),
    ]
    out = pixmorph.translate(translator, imgs, batch_size=2)
    assert [o.size for o in out] == [(45, 33), (32, 32), (45, 33)]
    assert pixmorph.translate(translator, imgs[0]).size == (45, 33)


def test_translate_tensors_and_batching_is_consistent(translator):
    x = torch.rand(3, 3, 64, 96) * 2 - 1
    batched = pixmorph.translate(translator, x)
    assert batched.shape == (3, 3, 64, 96)
    single = torch.stack([pixmorph.translate(translator, x[i]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)  # eval mode: no batch coupling
    assert batched.min() >= -1 and batched.max() <= 1


def test_bad_calls_are_explained(translator):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert pixmorph.translate(translator, x).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="takes 3 channels"):
        translator(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="fit must be"):
        translator(x, fit="stretch")
