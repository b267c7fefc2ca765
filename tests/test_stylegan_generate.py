"""StyleGAN for users: seeded generation, style mixing, projection, export, evaluation, serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

import pixmorph
from pixmorph.checkpoint import make_payload, save_atomic
from pixmorph.cli import main
from pixmorph.config import merge, to_dict
from pixmorph.data import synth
from pixmorph.data.images import open_image, to_tensor
from pixmorph.errors import CheckpointError, ConfigError
from pixmorph.evaluation.fid import Realism
from pixmorph.evaluation.generative import evaluate_sampler, sample_images
from pixmorph.evaluation.inception_weights import RandomFeatures
from pixmorph.inference.export_sampler import export_sampler_onnx, export_sampler_torchscript
from pixmorph.inference.generation import (
    LoadedSampler,
    generate,
    interpolate,
    load_latent,
    load_sampler,
    seed_latents,
    style_mix,
    ws_of,
)
from pixmorph.inference.projection import project
from pixmorph.methods.registry import get_method
from pixmorph.methods.settings import build_config
from pixmorph.methods.stylegan import StyleGAN
from pixmorph.nets.stylegan import mix_ws
from pixmorph.serving.models import ServedGenerator, load_served

CPU = torch.device("cpu")
SIZE = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth16")
    synth.write_colour(root, n=12, size=SIZE, seed=0, test_fraction=1 / 4)
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """An untrained tiny StyleGAN checkpoint with a w_avg (so truncation does something)."""
    tree = {"method": "stylegan", "out": "unused", "data": {"root": str(data), "crop_size": SIZE}}
    cfg = build_config(merge(tree, {**StyleGAN.tiny_settings, "data": {"load_size": SIZE}}))
    torch.manual_seed(0)
    method = StyleGAN(cfg, CPU, training=False)
    g = method.g_ema
    g.w_avg.copy_(g.mapping_net(torch.randn(256, g.z_dim)).mean(0))
    path = tmp_path_factory.mktemp("run") / "checkpoints" / "latest.pt"
    path.parent.mkdir()
    save_atomic(make_payload(to_dict(cfg), 5, method.state_dict()), path)
    return path


@pytest.fixture(scope="module")
def model(ckpt: Path) -> LoadedSampler:
    return load_sampler(ckpt, CPU)


def png(path: Path) -> torch.Tensor:
    return to_tensor(open_image(path, 3))


def q(x: torch.Tensor) -> torch.Tensor:
    """Pixels as an 8-bit PNG stores them."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round()


def test_same_seed_same_pixels_and_image_i_is_seed_plus_i(model: LoadedSampler) -> None:
    a = generate(model, 5, seed=3, truncation=0.7)
    assert torch.equal(a, generate(model, 5, seed=3, truncation=0.7))  # bit for bit
    # seeds 5 and 6 alone: the same images up to float rounding of a smaller batch
    torch.testing.assert_close(
        a[2:4], generate(model, 2, seed=5, truncation=0.7), atol=1e-5, rtol=0
    )
    solo = pixmorph.generate(model, 1, seed=4, truncation=0.7)[0]
    torch.testing.assert_close(solo, a[1], atol=1e-5, rtol=0)
    assert not torch.allclose(a[0], a[1], atol=1e-2)
    assert not torch.allclose(a[0], generate(model, 1, seed=3, truncation=1.0)[0], atol=1e-2)


def test_cli_generate_writes_seeded_files_and_a_grid(
    ckpt: Path, model: Any, tmp_path: Path
) -> None:
    out = tmp_path / "gen"
    args = ["--checkpoint", str(ckpt), "--n", "3", "--seed", "7", "--truncation", "0.7"]
    assert main(["generate", *args, "--output", str(out), "--grid", "--grid-cols", "2"]) == 0
    assert sorted(p.name for p in out.glob("seed*.png")) == [
        "seed000007.png", "seed000008.png", "seed000009.png",
    ]  # fmt: skip
    want = generate(model, 1, seed=8, truncation=0.7)[0]
    assert (q(png(out / "seed000008.png")) - q(want)).abs().max() <= 1  # 8-bit rounding
    assert Image.open(out / "grid.png").size == (2 * SIZE, 2 * SIZE)


def test_mixing_grid_cells_equal_generating_with_the_mixed_ws(model: LoadedSampler) -> None:
    g: Any = model.module
    grid = style_mix(model, [1, 2], [3, 4, 5], mix_from=2, truncation=0.8)
    assert grid.cells.shape == (2, 3, 3, SIZE, SIZE)
    ws = g.mapping(seed_latents([1, 2, 3, 4, 5], 16), 0.8)
    for i in range(2):
        for j in range(3):
            want = g.synthesis(mix_ws(ws[i : i + 1], ws[2 + j : 3 + j], 2)).clamp(-1, 1)
            torch.testing.assert_close(grid.cells[i, j], want[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(grid.rows[1], g.synthesis(ws[1:2]).clamp(-1, 1)[0])
    assert not torch.allclose(grid.cells[0, 0], grid.rows[0])  # the fine styles changed it
    assert grid.image().shape == (3, 3 * SIZE, 4 * SIZE)  # sources on top and on the left
    with pytest.raises(ConfigError, match="--mix-from"):
        style_mix(model, [1], [2], mix_from=g.num_ws)


def test_cli_mix_and_interpolation_gif(ckpt: Path, model: LoadedSampler, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    base = ["generate", "--checkpoint", str(ckpt), "--output", str(out)]
    assert main([*base, "--mix-rows", "1,2", "--mix-cols", "3", "--mix-from", "3"]) == 0
    assert Image.open(out / "mix.png").size == (2 * SIZE, 3 * SIZE)
    assert main([*base, "--interpolate", "1", "2", "--frames", "4", "--gif"]) == 0
    gif = Image.open(out / "interpolation.gif")
    assert gif.n_frames == 6  # 4 forth, 2 back
    frames = interpolate(model, 1, 2, 4)
    torch.testing.assert_close(frames[0], generate(model, 1, seed=1)[0], atol=1e-5, rtol=0)
    strip = png(out / "interpolation.png")
    assert strip.shape == (3, SIZE, 4 * SIZE)
    assert main([*base, "--mix", "1", "2", "--mix-rows", "3", "--mix-cols", "4"]) == 2


def test_a_translator_checkpoint_is_refused(tmp_path: Path, data: Path) -> None:
    cfg = tiny_config(data, tmp_path / "p2p")
    method = get_method(cfg.method)(cfg, CPU, training=False)
    path = tmp_path / "p2p.pt"
    save_atomic(make_payload(to_dict(cfg), 1, method.state_dict()), path)
    with pytest.raises(CheckpointError, match="translates images"):
        load_sampler(path, CPU)
    assert main(["generate", "--checkpoint", str(path), "--output", str(tmp_path / "o")]) == 2


def test_projection_recovers_a_generated_image(model: LoadedSampler, tmp_path: Path) -> None:
    target = generate(model, 1, seed=42)
    res = project(model, target, steps=60)
    # measured: 4.0 -> 0.35 in 60 steps (untrained tiny G); asked: a 5x drop
    assert res.losses[-1] < res.losses[0] / 5
    err_start = (generate(model, 1, seed=0, truncation=0.0) - target).square().mean()
    assert (res.image - target).square().mean() < err_start / 5
    path = res.save(tmp_path / "photo_w.pt", "ckpt", 5)
    latent = torch.load(path, weights_only=True)
    assert latent["ws"].shape == (1, model.module.num_ws, 16) and latent["w_plus"] is False
    # a projected image mixes like a seed: the same latent on both sides is itself
    torch.testing.assert_close(ws_of(model, [path]), res.ws)
    grid = style_mix(model, [path], [path, 3], mix_from=2)
    torch.testing.assert_close(grid.cells[0, 0], res.image[0], atol=1e-5, rtol=0)
    assert load_latent(path)["checkpoint"] == "ckpt"


def test_w_plus_projection_and_cli(ckpt: Path, model: LoadedSampler, tmp_path: Path) -> None:
    target = generate(model, 1, seed=9)
    photo = tmp_path / "photo.png"
    Image.fromarray(q(target[0]).permute(1, 2, 0).byte().numpy()).resize((32, 32)).save(photo)
    args = ["project", "--checkpoint", str(ckpt), "--image", str(photo), "--steps", "5"]
    assert main([*args, "--w-plus", "--output", str(tmp_path / "p")]) == 0
    latent = torch.load(tmp_path / "p" / "photo_wplus.pt", weights_only=True)
    assert latent["w_plus"] is True
    assert not torch.equal(latent["ws"][0, 0], latent["ws"][0, -1])  # one w per layer
    out = tmp_path / "m"
    latent_file = str(tmp_path / "p" / "photo_wplus.pt")
    cmd = ["generate", "--checkpoint", str(ckpt), "--output", str(out)]
    assert main([*cmd, "--mix", latent_file, "3", "--mix-from", "2"]) == 0
    assert (out / "mix.png").is_file()


@pytest.mark.parametrize("psi", [1.0, 0.5])
def test_exported_sampler_equals_the_method(
    model: LoadedSampler, tmp_path: Path, psi: float
) -> None:
    ort = pytest.importorskip("onnxruntime")
    z = seed_latents([1, 2], 16)
    want = model.module(z, psi)
    onnx_path = export_sampler_onnx(model, tmp_path / "s.onnx", batch=2)
    got = ort.InferenceSession(str(onnx_path)).run(
        None, {"z": z.numpy(), "truncation": np.array([psi], np.float32)}
    )[0]
    torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=0)
    ts = torch.jit.load(str(export_sampler_torchscript(model, tmp_path / "s.ts", batch=2)))
    torch.testing.assert_close(ts(z, torch.tensor([psi])), want, atol=1e-5, rtol=0)


def test_cli_export_of_a_generator(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.torchscript"
    args = ["export", "--checkpoint", str(ckpt), "--format", "torchscript", "--out", str(out)]
    assert main(args) == 0 and out.is_file()
    bad = ["export", "--checkpoint", str(ckpt), "--format", "reference-state-dict"]
    assert main([*bad, "--out", str(tmp_path / "x.pth")]) == 2


def test_sample_scores_against_its_own_samples(model: LoadedSampler, data: Path) -> None:
    realism = Realism(RandomFeatures(), kid_subsets=10, kid_subset_size=8, batch_size=8)
    own = list(sample_images(model.sampler, 12, seed=100))
    same = evaluate_sampler(model.sampler, own, realism, 12, seed=100, k=3)
    assert same["fid"] == pytest.approx(0, abs=1e-6)
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    photos = [to_tensor(open_image(p, 3)) for p in sorted((data / "train").glob("*.png"))]
    other = evaluate_sampler(model.sampler, photos, realism, 12, seed=100, k=3)
    assert other["fid"] > 10 * max(same["fid"], 1e-3)
    assert 0 <= other["precision"] <= 1 and 0 <= other["recall"] <= 1


def test_cli_evaluate_of_a_generator(ckpt: Path, data: Path) -> None:
    args = ["evaluate", "--checkpoint", str(ckpt), "--feature-net", "random", "--samples", "8"]
    assert main([*args, "--kid-subsets", "5", "--data", str(data / "train")]) == 0
    summary = json.loads((ckpt.parent.parent / "eval_samples" / "metrics.json").read_text())
    assert set(summary["mean"]) == {"fid", "kid", "precision", "recall"}
    assert summary["realism"]["count_real"] == 9 and summary["checkpoint_step"] == 5


def test_served_generator_gives_the_seed_image(ckpt: Path, model: LoadedSampler) -> None:
    served = load_served([ckpt], device="cpu")
    m = next(iter(served.values()))
    assert isinstance(m, ServedGenerator) and m.capabilities == ["generate"]
    assert m.describe()["size"] == SIZE
    img = np.asarray(m.generate(11, 0.6), dtype=np.float32)
    want = q(generate(model, 1, seed=11, truncation=0.6)[0]).permute(1, 2, 0).numpy()
    assert np.abs(img - want).max() <= 1  # 8-bit rounding
