"""Colorization: the Lab conversion, greyscale detection, the method, and that it learns colour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from PIL import Image
from torch import nn

from pixmorph import metrics
from pixmorph.cli import main
from pixmorph.color import greyscale, image_to_lab, lab_to_image, lab_to_rgb, rgb_to_lab
from pixmorph.data import png16, synth
from pixmorph.data.images import is_greyscale, read_image
from pixmorph.data.single import SingleDataset
from pixmorph.errors import ConfigError
from pixmorph.methods.colorization import Colorization, LabColorizer
from pixmorph.methods.settings import build_config
from pixmorph.training.trainer import train

# --- an independent CIE Lab reference: matrix derived from the sRGB primaries ----------------
PRIMARIES = {"r": (0.64, 0.33), "g": (0.30, 0.60), "b": (0.15, 0.06)}
D65 = (0.3127, 0.3290)


def xyz_of(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def srgb_matrix() -> np.ndarray:
    """RGB -> XYZ from the chromaticities: columns scaled so that RGB = 1 gives the white."""
    p = np.stack([xyz_of(PRIMARIES[k]) for k in "rgb"], axis=1)
    return p * np.linalg.solve(p, xyz_of(D65))


def reference_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) sRGB in 0..1 -> (N, 3) L*a*b*, the CIE epsilon/kappa formulation."""
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = lin @ srgb_matrix().T / xyz_of(D65)
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def as_image(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float32)).T.reshape(1, 3, -1, 1)


def test_lab_matches_the_reference_formula() -> None:
    rgb = np.random.default_rng(0).random((500, 3))
    rgb[:8] = [[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]  # cube corners
    ours = rgb_to_lab(as_image(rgb)).reshape(3, -1).T.double().numpy()
    assert np.abs(ours - reference_lab(rgb)).max() < 0.05  # the white point's 5th digit differs


def test_lab_known_values_and_inverse() -> None:
    known = {(1, 0, 0): (53.2408, 80.0925, 67.2032), (1, 1, 1): (100, 0, 0), (0, 0, 0): (0, 0, 0)}
    for rgb, lab in known.items():
        got = rgb_to_lab(torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1)).flatten()
        assert torch.allclose(got, torch.tensor(lab, dtype=torch.float32), atol=2e-3)
    x = torch.rand(2, 3, 9, 7)
    assert (lab_to_rgb(rgb_to_lab(x)) - x).abs().max() < 1e-4


def test_model_scale_covers_the_gamut_and_has_finite_gradients() -> None:
    x = torch.rand(1, 3, 40, 40) * 2 - 1
    x[0, :, 0, :8] = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]).T * 2 - 1
    lab = image_to_lab(x)
    assert lab.abs().max() <= 1.0
    x.requires_grad_(True)
    (lab_to_image(image_to_lab(x)) - x).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    far = torch.tensor([[0.0], [2.0], [-2.0]]).view(1, 3, 1, 1).requires_grad_(True)
    out = lab_to_image(far)  # out of gamut: clipped, still differentiable
    out.sum().backward()
    assert out.abs().max() <= 1 and torch.isfinite(far.grad).all()


def test_greyscale_keeps_l_and_drops_chroma() -> None:
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    g = image_to_lab(greyscale(x))
    lab = image_to_lab(x)
    assert (g[:, :1] - lab[:, :1]).abs().max() < 1e-4 and g[:, 1:].abs().max() < 1e-4


def test_is_greyscale() -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (20, 20, 1), dtype=np.uint8)
    assert is_greyscale(grey) and is_greyscale(np.dstack([grey, grey]))
    noisy = np.clip(grey.astype(int) + rng.integers(-1, 2, (20, 20, 3)), 0, 255).astype(np.uint8)
    assert is_greyscale(noisy)  # compression noise does not make a colour image
    colour = noisy.copy()
    colour[:4, :, 0] = 255  # a red band, 20 % of the pixels
    assert not is_greyscale(colour)
    assert is_greyscale(np.repeat(grey, 3, 2).astype(np.uint16) * 257)


def test_config_rejects_other_channel_counts(tmp_path: Path) -> None:
    tree = {"method": "colorization", "out": str(tmp_path), "data": {"in_channels": 1}}
    with pytest.raises(ConfigError, match="in_channels"):
        build_config(tree)


def test_colorizer_takes_grey_or_colour_and_keeps_l() -> None:
    class NoColour(nn.Module):
        def forward(self, lum: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(lum).expand(-1, 2, -1, -1)

    x = torch.rand(2, 3, 8, 8) * 2 - 1
    colorizer = LabColorizer(NoColour())
    assert torch.allclose(colorizer(x), greyscale(x), atol=1e-5)
    grey = torch.rand(2, 1, 8, 8) * 2 - 1
    assert torch.allclose(colorizer(grey), colorizer(grey.expand(-1, 3, -1, -1)))


# --- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny colorization run on synthetic colour scenes, plus two greyscale files to skip."""
    tmp = tmp_path_factory.mktemp("colorization")
    root = tmp / "data"
    synth.write_colour(root, n=72, size=32, seed=0, test_fraction=1 / 6)
    photo = np.asarray(Image.open(root / "train" / "00000.png"))
    Image.fromarray(photo[:, :, 0], "L").save(root / "train" / "grey_l.png")
    Image.fromarray(np.repeat(photo[:, :, 1:2], 3, 2), "RGB").save(root / "train" / "grey_rgb.png")
    tree = {
        "method": "colorization",
        "out": str(tmp / "run"),
        "data": {"root": str(root), "crop_size": 32, "load_size": 36},
        "train": {
            "steps": 150,
            "batch_size": 8,
            "lr": 1e-3,
            "log_every": 50,
            "sample_every": 150,
            "checkpoint_every": 150,
            "seed": 0,
        },
        "model": {"generator": {"ngf": 16}, "discriminator": {"ndf": 8}},
    }
    cfg = build_config(tree)
    train(cfg)
    return {"root": root, "run": tmp / "run", "cfg": cfg, "tmp": tmp}


def test_training_skips_and_counts_greyscale_files(trained: dict) -> None:
    ds = Colorization.make_dataset(trained["cfg"], train=True)
    assert sorted(p.name for p in ds.images.greyscale_skipped) == ["grey_l.png", "grey_rgb.png"]
    assert len(ds) == 60
    item = ds[0]
    assert item["a"].shape == item["b"].shape == (3, 32, 32)


def test_colorization_beats_the_grey_baseline(trained: dict) -> None:
    out = trained["tmp"] / "eval"
    args = ["--checkpoint", str(trained["run"]), "--data", str(trained["root"]), "--out", str(out)]
    assert main(["evaluate", *args]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    test_set = Colorization.make_dataset(trained["cfg"], train=False)
    batch = torch.utils.data.default_collate([test_set[i] for i in range(len(test_set))])
    baseline = float(metrics.psnr(batch["a"], batch["b"]).mean())  # "a" is the ab = 0 image
    margin = summary["mean"]["psnr"] - baseline
    # measured +1.75/+1.79/+1.94 dB over the 19.8 dB of the grey images (seeds 0/1/2)
    assert margin > 0.8, f"PSNR {summary['mean']['psnr']:.2f} vs grey {baseline:.2f}"
    m = summary["mean"]
    assert m["colourfulness_target"] > 30 and m["colourfulness"] > 0.5 * m["colourfulness_target"]
    assert (out / "images" / "00005_output.png").is_file()


def test_translate_greyscale_files_to_rgb_at_their_size(trained: dict) -> None:
    src = trained["tmp"] / "in"
    src.mkdir()
    photo = np.asarray(Image.open(trained["root"] / "test" / "00005.png"))
    Image.fromarray(photo[:27, :31, 1], "L").save(src / "grey8.png")
    png16.write_png(src / "grey16.png", photo[:30, :29, 1:2].astype(np.uint16) * 257)
    Image.fromarray(photo).save(src / "colour.jpg")
    out = trained["tmp"] / "out"
    args = ["--checkpoint", str(trained["run"]), "--input", str(src), "--output", str(out)]
    assert main(["translate", *args]) == 0
    assert read_image(out / "grey8.png").shape == (27, 31, 3)
    deep = read_image(out / "grey16.png")
    assert deep.shape == (30, 29, 3) and deep.dtype == np.uint16
    assert read_image(out / "colour.png").shape == (32, 32, 3)
    assert not is_greyscale(read_image(out / "colour.png"))


def test_real_set14_greyscale_files_are_skipped() -> None:
    folder = SHARED_DATA / "sr" / "Set14"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (shared data)")
    ds = SingleDataset(folder, colour_only=True, crop_size=64, load_size=72)
    # bridge.png is stored greyscale, man.png as RGB with equal channels
    assert sorted(p.name for p in ds.greyscale_skipped) == ["bridge.png", "man.png"]
    assert len(ds) == 12
