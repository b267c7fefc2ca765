"""Geometric self-ensemble at inference (Translator.ensemble, --ensemble)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from pixmorph.config import Config
from pixmorph.errors import ConfigError
from pixmorph.inference.translator import Translator, ensembled
from pixmorph.methods.base import Generator

CPU = torch.device("cpu")


def skewed(t: Tensor) -> Tensor:
    """A 'model' whose output depends on the orientation it sees: running sums along W."""
    return t.cumsum(-1)


def test_ensemble_averages_every_orientation_turned_back_upright() -> None:
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(ensembled(skewed, x, 1), skewed(x))
    # by hand, in numpy: the eight orientations of the (H, W) plane and their inverses
    a = x.numpy()
    outs = []
    for mirror in (False, True):
        for turns in range(4):
            t = a[..., ::-1] if mirror else a
            y = np.cumsum(np.rot90(t, turns, axes=(-2, -1)), axis=-1)
            y = np.rot90(y, -turns, axes=(-2, -1))
            outs.append(y[..., ::-1] if mirror else y)
    want8 = torch.from_numpy(np.mean(outs, axis=0).copy()).float()
    want2 = torch.from_numpy(((outs[0] + outs[4]) / 2).copy()).float()
    torch.testing.assert_close(ensembled(skewed, x, 8), want8)
    torch.testing.assert_close(ensembled(skewed, x, 2), want2)
    with pytest.raises(ConfigError, match="--ensemble 3"):
        ensembled(skewed, x, 3)


class Biased(nn.Module):
    """Upscales x2 (nearest) and adds an error that tilts left to right: a mirror cancels it."""

    def forward(self, x: Tensor) -> Tensor:
        up = x.repeat_interleave(2, -2).repeat_interleave(2, -1)
        tilt = torch.linspace(-0.2, 0.2, up.shape[-1])
        return up + tilt


def test_orientation_dependent_errors_cancel_on_non_square_images() -> None:
    gen = Generator(Biased(), 3, 3, size_multiple=1, scale=2)
    x = torch.rand(1, 3, 9, 14) * 1.6 - 0.8
    truth = x.repeat_interleave(2, -2).repeat_interleave(2, -1)
    errors = {}
    for n in (1, 2, 8):
        y = Translator(gen, Config(), None, CPU, tile=0, ensemble=n)(x)
        assert y.shape == (1, 3, 18, 28)
        errors[n] = float((y - truth).abs().mean())
    assert errors[1] > 0.09  # the tilt, left as it is
    assert errors[2] < 1e-6 and errors[8] < 1e-6  # the mirror's tilt is the opposite one
