"""Multimodal translation for users: --styles K, --style-from, the Python API, export, serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from munit_helpers import make_munit_run
from PIL import Image

import pixmorph
from pixmorph.cli import main
from pixmorph.data.images import open_image, to_tensor
from pixmorph.errors import ConfigError
from pixmorph.inference.export import load_exported
from pixmorph.inference.loading import load_generator
from pixmorph.serving.models import load_served

CPU = ["--device", "cpu", "--precision", "fp32"]


@pytest.fixture(scope="module")
def munit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_munit_run(tmp_path_factory.mktemp("munit_styles"))


def cli(run: Path, src: Path, out: Path, *flags: str) -> int:
    args = ["translate", "--checkpoint", str(run), "--input", str(src), "--output", str(out)]
    return main([*args, *CPU, *flags])


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_styles_writes_k_distinct_reproducible_outputs(munit, tmp_path):
    data, run = munit
    stems = sorted(p.stem for p in (data / "testA").glob("*.png"))
    assert cli(run, data / "testA", tmp_path / "a", "--styles", "3", "--seed", "5") == 0
    want = sorted(f"{s}_s{k}.png" for s in stems for k in range(3))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == want
    first = [pixels(tmp_path / "a" / f"{stems[0]}_s{k}.png") for k in range(3)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(first[i] - first[j]).mean() > 0.5, (i, j)  # different styles
    # the same seed gives the same pixels; another seed other ones
    assert cli(run, data / "testA", tmp_path / "b", "--styles", "3", "--seed", "5") == 0
    assert cli(run, data / "testA", tmp_path / "c", "--styles", "3", "--seed", "6") == 0
    for name in want:
        assert np.array_equal(pixels(tmp_path / "a" / name), pixels(tmp_path / "b" / name))
    assert not np.array_equal(first[0], pixels(tmp_path / "c" / f"{stems[0]}_s0.png"))


def test_styles_match_the_python_api(munit):
    data, run = munit
    t = load_generator(run, device="cpu")
    img = open_image(sorted((data / "testA").glob("*.png"))[0])
    (outs,) = pixmorph.translate_styles(t, [img], styles=2, seed=5)
    codes = pixmorph.random_styles(t, 2, seed=5)
    x = to_tensor(img).unsqueeze(0)
    for out, code in zip(outs, codes, strict=True):
        want = t.generator.module(x, code.unsqueeze(0)).clamp(-1, 1)[0]
        assert np.abs(np.asarray(out, dtype=float) - np.asarray(pixmorph_png(want))).max() <= 1
    # the plain API still translates in the zero code
    plain = pixmorph.translate(t, img)
    zero = t.generator.module(x, torch.zeros(1, t.generator.style_dim)).clamp(-1, 1)[0]
    assert np.abs(np.asarray(plain, dtype=float) - np.asarray(pixmorph_png(zero))).max() <= 1


def pixmorph_png(t: torch.Tensor) -> Image.Image:
    arr = ((t.detach() + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr)


def test_style_from_uses_the_examples_code(munit, tmp_path):
    data, run = munit
    example = sorted((data / "testB").glob("*.png"))[-1]
    src = sorted((data / "testA").glob("*.png"))[0]
    assert cli(run, src, tmp_path / "o", "--style-from", str(example)) == 0
    got = pixels(tmp_path / "o" / f"{src.stem}.png")
    t = load_generator(run, device="cpu")
    with torch.no_grad():
        code = t.generator.style_encoder(to_tensor(open_image(example)).unsqueeze(0))  # (1, D)
        want = t.generator.module(to_tensor(open_image(src)).unsqueeze(0), code)[0]
    assert np.abs(got - np.asarray(pixmorph_png(want.clamp(-1, 1)), dtype=np.int16)).max() <= 1
    assert torch.equal(pixmorph.encode_style(t, open_image(example)), code[0])
    # and it is not the zero-code translation
    assert cli(run, src, tmp_path / "z") == 0
    assert np.abs(got - pixels(tmp_path / "z" / f"{src.stem}.png")).mean() > 0.5


def edges(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the grey image, flattened and standardised."""
    g = img.astype(float).mean(-1)
    e = np.hypot(np.diff(g, axis=0)[:, :-1], np.diff(g, axis=1)[:-1, :]).ravel()
    return (e - e.mean()) / (e.std() + 1e-9)


def test_content_is_kept_across_styles(munit, tmp_path):
    """Edges of one input's K outputs agree more with each other than with other inputs'."""
    data, run = munit
    assert cli(run, data / "testA", tmp_path / "o", "--styles", "4") == 0
    stems = sorted(p.stem for p in (data / "testA").glob("*.png"))
    e = {(s, k): edges(pixels(tmp_path / "o" / f"{s}_s{k}.png")) for s in stems for k in range(4)}
    keys = list(e)
    corr = np.array([[float(np.mean(e[a] * e[b])) for b in keys] for a in keys])  # correlations
    same = np.array([[a[0] == b[0] for b in keys] for a in keys])
    np.fill_diagonal(corr, -np.inf)
    # each output's closest other output (by edge correlation) is one of its own input's
    nearest = [keys[j][0] for j in corr.argmax(1)]
    assert nearest == [k[0] for k in keys], corr
    off = ~np.eye(len(keys), dtype=bool)
    assert corr[same & off].mean() > 2 * corr[~same].mean() + 0.05


def test_clear_errors(munit, tmp_path, capsys):
    data, run = munit
    src = data / "testA"
    for flags, message in (
        (["--styles", "0"], "--styles 0: ask for at least 1"),
        (["--styles", "2", "--style-from", str(src)], "exclude each other"),
        (["--styles", "2", "--engine", "onnx"], "--engine torch"),
        (["--style-from", str(tmp_path / "none.png")], "does not exist"),
    ):
        assert cli(run, src, tmp_path / "o", *flags) == 2, flags
        assert message in capsys.readouterr().err, flags
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    t = load_generator(run, device="cpu")
    t.generator.style_dim = 0  # as a one-output model (pix2pix, CycleGAN) loads
    with pytest.raises(ConfigError, match="--styles needs a multimodal model"):
        pixmorph.random_styles(t, 2)
    with pytest.raises(ConfigError, match="--style-from needs a multimodal model"):
        pixmorph.encode_style(t, torch.zeros(3, 32, 32))


def test_export_builds_the_zero_style_in(munit, tmp_path):
    data, run = munit
    t = load_generator(run, device="cpu")
    path = tmp_path / "g.torchscript"
    assert (
        main(["export", "--checkpoint", str(run), "--format", "torchscript", "--out", str(path)])
        == 0
    )
    exported = load_exported(path)
    assert exported.generator.style_dim == 0  # one input: the style is built in
    x = to_tensor(open_image(sorted((data / "testA").glob("*.png"))[0])).unsqueeze(0)
    assert torch.allclose(exported(x), t(x), atol=1e-5)


def test_served_munit_returns_k_images_from_a_seed(munit):
    data, run = munit
    (model,) = load_served([run], device="cpu").values()
    assert model.multimodal and "styles" in model.capabilities
    img = open_image(sorted((data / "testA").glob("*.png"))[0])
    outs = model.translate(img, "AtoB", styles=3, style_seed=7)
    again = model.translate(img, "AtoB", styles=3, style_seed=7)
    assert len(outs) == 3 and all(o.size == img.size for o in outs)
    assert [np.asarray(o).tobytes() for o in outs] == [np.asarray(o).tobytes() for o in again]
    assert not np.array_equal(np.asarray(outs[0]), np.asarray(outs[1]))
    t = load_generator(run, device="cpu")
    (want,) = pixmorph.translate_styles(t, img, styles=3, seed=7)
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(outs, want, strict=True)
    )
    # BtoA too, from the same checkpoint; one style and no seed: the zero code
    assert len(model.translate(img, "BtoA", styles=2, style_seed=1)) == 2
    (zero,) = model.translate(img, "AtoB")
    assert np.array_equal(np.asarray(zero), np.asarray(pixmorph.translate(t, img)))
