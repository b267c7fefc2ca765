"""Evaluating multimodal and flood translation: diversity, FID/KID of MUNIT, the flood figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from munit_helpers import make_munit_run
from PIL import Image
from torch import Tensor, nn

from pixmorph.cli import main
from pixmorph.config import Config
from pixmorph.evaluation.diversity import diversity, mean_pairwise_distance
from pixmorph.evaluation.flood import evaluate_flood, masked_ssim
from pixmorph.evaluation.inception_weights import RandomFeatures
from pixmorph.inference.loading import load_generator
from pixmorph.inference.translator import Translator
from pixmorph.methods.base import Generator

CPU = torch.device("cpu")
# torch 2.13 marks TorchScript deprecated; segmenters still come as TorchScript files
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def munit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_munit_run(tmp_path_factory.mktemp("munit_eval"))


class Collapsed(nn.Module):
    """A multimodal network that ignores its style: every code gives the same output."""

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return torch.tanh(x.flip(1))


def fake_translator(module: nn.Module, style_dim: int = 4) -> Translator:
    gen = Generator(module, 3, 3, 1, style_dim=style_dim)
    return Translator(gen, Config(method="munit"), "AtoB", CPU)


def images(n: int, seed: int = 0) -> list[tuple[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(f"im{i}", torch.rand(3, 16, 16, generator=g) * 2 - 1) for i in range(n)]


def test_mean_pairwise_distance_by_hand():
    f = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])
    assert mean_pairwise_distance(f) == pytest.approx((5 + 8 + 5) / 3)
    assert mean_pairwise_distance(f[:1]) == 0.0


def test_diversity_is_zero_for_a_collapsed_model_and_positive_for_munit(munit):
    net = RandomFeatures(dim=16)
    d = diversity(fake_translator(Collapsed()), images(3), net, styles=4, seed=0)
    assert d["diversity"] == 0.0 and d["collapsed"] == 0.0
    assert d["between_inputs"] > 0  # the inputs themselves differ
    data, run = munit
    t = load_generator(run, device="cpu")
    real = [(f"im{i}", x) for i, (_, x) in enumerate(images(3))]
    d = diversity(t, real, net, styles=4, seed=0)
    assert d["diversity"] > 1e-3 and len(d["per_image"]) == 3
    assert diversity(t, real, net, styles=4, seed=0)["diversity"] == d["diversity"]


def test_evaluate_reports_fid_kid_and_diversity_for_munit(munit, tmp_path, capsys):
    data, run = munit
    args = ["evaluate", "--checkpoint", str(run), "--data", str(data), "--device", "cpu"]
    args += ["--feature-net", "random", "--kid-subset-size", "2", "--out", str(tmp_path / "e")]
    assert main([*args, "--fid", "--kid", "--styles", "3"]) == 0
    summary = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert math.isfinite(summary["realism"]["fid"]) and summary["realism"]["count_fake"] == 3
    assert summary["diversity"]["styles"] == 3 and summary["diversity"]["diversity"] > 0
    assert "collapsed model: 0" in capsys.readouterr().out
    assert main([*args, "--styles", "1"]) == 2
    assert "at least 2 styles" in capsys.readouterr().err


def write_tiny_flood(root: Path) -> dict[str, np.ndarray]:
    """One 16x16 scene: mask on the bottom half; the true flooded image differs there only."""
    rng = np.random.default_rng(0)
    dry = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[8:] = 255
    wet = dry.copy()
    wet[8:] = rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)
    for folder, arr in (("testA", dry), ("testB", wet), ("testmaskA", mask)):
        (root / folder).mkdir(parents=True)
        Image.fromarray(arr).save(root / folder / "00001.png")
    return {"dry": dry, "wet": wet, "mask": mask > 0}


class Darken(nn.Module):
    """x -> x - 0.25: a known change everywhere."""

    def forward(self, x: Tensor) -> Tensor:
        return x - 0.25


def test_flood_figures_equal_hand_computations(tmp_path):
    arrays = write_tiny_flood(tmp_path)
    t = fake_translator(Darken(), style_dim=0)
    s = evaluate_flood(t, tmp_path, tmp_path / "out")
    (row,) = s["images"]
    dry = arrays["dry"].astype(float) / 127.5 - 1
    wet = arrays["wet"].astype(float) / 127.5 - 1
    out = np.clip(dry - 0.25, -1, 1)
    m = arrays["mask"]
    keep_mse = ((out - dry)[~m] ** 2).mean()
    assert row["keep_psnr"] == pytest.approx(10 * math.log10(4 / keep_mse))
    assert row["water_l1"] == pytest.approx(np.abs(out - wet)[m].mean())
    assert row["water_psnr"] == pytest.approx(10 * math.log10(4 / ((out - wet)[m] ** 2).mean()))
    po, pw = (out[m] + 1) / 2, (wet[m] + 1) / 2  # (N, 3) in [0, 1]
    colour = math.sqrt(
        ((po.mean(0) - pw.mean(0)) ** 2).sum() + ((po.std(0) - pw.std(0)) ** 2).sum()
    )
    assert row["water_colour"] == pytest.approx(colour)
    # the identity baseline: the dry scene scored against the flooded one inside the mask
    assert s["baseline"]["mean"]["water_l1"] == pytest.approx(np.abs(dry - wet)[m].mean())
    assert (tmp_path / "out" / "index.html").is_file()


def test_masked_ssim_by_hand():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 16, 16, generator=g) * 2 - 1
    ones = torch.ones(1, 16, 16)
    assert masked_ssim(x, x, ones) == pytest.approx(1.0)
    # a constant shift keeps structure and contrast: only luminance term drops, by hand at
    # the centre pixel when the mask selects only it
    centre = torch.zeros(1, 16, 16)
    centre[0, 8, 8] = 1
    y = x + 0.5
    k = torch.exp(-((torch.arange(11.0) - 5) ** 2) / (2 * 1.5**2)).double()
    w = (k[:, None] * k[None, :]) / k.sum() ** 2  # (11, 11), sums to 1
    want = []
    for c in range(3):
        px, py = x[c, 3:14, 3:14].double(), y[c, 3:14, 3:14].double()
        mx, my = (w * px).sum(), (w * py).sum()
        vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
        cov = (w * px * py).sum() - mx * my
        c1, c2 = 0.02**2, 0.06**2
        want.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert masked_ssim(y, x, centre) == pytest.approx(float(sum(want) / 3))


class LabelByRed(nn.Module):
    """Two classes: red channel above 0 or not (logits (B, 2, H, W))."""

    def forward(self, x: Tensor) -> Tensor:
        r = x[:, :1]
        return torch.cat([-r, r], 1)


def test_flood_mode_through_the_cli_with_a_segmenter(munit, tmp_path, capsys):
    data, run = munit
    seg = tmp_path / "seg.pt"
    torch.jit.save(torch.jit.script(LabelByRed()), str(seg))
    args = ["evaluate", "--checkpoint", str(run), "--data", str(data), "--mode", "flood"]
    args += ["--device", "cpu", "--out", str(tmp_path / "e"), "--segmenter", str(seg)]
    assert main(args) == 0
    summary = json.loads((tmp_path / "e" / "metrics.json").read_text())
    t = load_generator(run, device="cpu")
    direct = evaluate_flood(t, data, None)
    for k in ("keep_psnr", "keep_ssim", "water_l1", "water_colour"):
        assert summary["mean"][k] == pytest.approx(direct["mean"][k])
    assert 0 <= summary["mean"]["seg_agreement"] <= 1
    assert summary["count"] == len(list((data / "testA").glob("*.png")))
    assert "identity (no flooding)" in capsys.readouterr().out
    assert main([*args[:-2], "--direction", "BtoA"]) == 2
    assert "A -> B" in capsys.readouterr().err


def test_flood_segmenter_agreement_by_hand(tmp_path):
    arrays = write_tiny_flood(tmp_path)
    seg = torch.jit.script(LabelByRed())
    s = evaluate_flood(fake_translator(Darken(), 0), tmp_path, None, segmenter=seg)
    dry = arrays["dry"].astype(float) / 127.5 - 1
    red, keep = dry[..., 0], ~arrays["mask"]
    want = ((red > 0) == (np.clip(red - 0.25, -1, 1) > 0))[keep].mean()
    assert s["mean"]["seg_agreement"] == pytest.approx(want)
    assert want < 1  # the darkening flips some labels: the figure can fail
