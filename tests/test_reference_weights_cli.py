"""The CLI around reference pix2pix/CycleGAN weights: import-weights, translate, export, train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pixmorph.cli import main
from pixmorph.data.images import to_pil, to_tensor
from pixmorph.interop.weights import reference_state_dict
from pixmorph.nets.factory import GeneratorConfig, build_generator


def make_net(arch: str, norm: str, ngf: int = 8) -> torch.nn.Module:
    torch.manual_seed(1)
    net = build_generator(GeneratorConfig(arch, ngf, norm, False), 3, 3)  # type: ignore[arg-type]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


@pytest.fixture
def resnet_file(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    """A resnet_6blocks generator (batch norm, no dropout) saved in the reference layout."""
    net = make_net("resnet_6blocks", "batch")
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference_state_dict(net), path)
    return net, path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(32, 32), (36, 28)]):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def read(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p), dtype=np.int16) for p in sorted(folder.glob("*.png"))}


def test_import_then_translate_and_evaluate_without_flags(
    resnet_file: tuple, images: Path, tmp_path: Path, paired_root: Path
) -> None:
    net, path = resnet_file
    ckpt = tmp_path / "imported.pt"
    assert main(["import-weights", str(path), "--out", str(ckpt)]) == 0
    assert main(["import-weights", str(path), "--out", str(ckpt)]) == 2  # no silent overwrite
    common = ["translate", "--input", str(images), "--device", "cpu", "--output"]
    assert main(common + [str(tmp_path / "o1"), "--checkpoint", str(ckpt)]) == 0
    direct = ["--checkpoint", str(path), "--arch", "resnet_6blocks", "--norm", "batch"]
    assert main(common + [str(tmp_path / "o2"), *direct, "--no-dropout"]) == 0
    one, two = read(tmp_path / "o1"), read(tmp_path / "o2")
    assert one.keys() == two.keys() == {"0.png", "1.png"}
    assert all(np.array_equal(one[k], two[k]) for k in one)
    with torch.no_grad():  # the 32x32 image needs no padding: compare with the net itself
        x = to_tensor(Image.open(images / "0.png").convert("RGB"))[None]
        want = np.asarray(to_pil(net(x)[0].clamp(-1, 1)), dtype=np.int16)
    assert np.abs(one["0.png"] - want).max() <= 1
    out = tmp_path / "eval"
    args = ["--data", str(paired_root), "--out", str(out), "--no-images", "--device", "cpu"]
    assert main(["evaluate", "--checkpoint", str(ckpt)] + args) == 0
    assert (out / "metrics.json").is_file()


def test_wrong_flags_fail_with_the_fitting_ones(
    resnet_file: tuple, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, path = resnet_file
    args = ["--input", str(images), "--output", str(tmp_path / "o"), "--norm", "instance"]
    assert main(["translate", "--checkpoint", str(path)] + args) == 2
    err = capsys.readouterr().err
    assert (
        "pixmorph translate: error:" in err
        and "it was trained with batch norm (--norm batch)" in err
    )


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_export_round_trips(resnet_file: tuple, tmp_path: Path, suffix: str) -> None:
    _, path = resnet_file
    ckpt, back = tmp_path / "imported.pt", tmp_path / f"back{suffix}"
    assert main(["import-weights", str(path), "--out", str(ckpt)]) == 0
    args = ["--checkpoint", str(ckpt), "--format", "reference-state-dict", "--out", str(back)]
    assert main(["export"] + args) == 0
    original = torch.load(path, weights_only=True)
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        exported = load_file(back)
    else:
        exported = torch.load(back, weights_only=True)
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[k], v) for k, v in original.items())


def _train(paired_root: Path, out: Path, *extra: str) -> int:
    # key=value overrides go before the flags (argparse takes positionals in one run)
    overrides = ["model.discriminator.ndf=8", "train.sample_every=0"]
    overrides += [e for e in extra if "=" in e]
    args = ["train", *overrides, "--data", str(paired_root), "--direction", "BtoA", "--size"]
    args += ["32", "--steps", "2", "--batch-size", "2", "--out", str(out), "--no-progress"]
    return main(args + [e for e in extra if "=" not in e])


def test_train_starts_from_the_given_generator(
    paired_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    net = make_net("unet_32", "batch")
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference_state_dict(net), path)
    # lr 0: the two steps change only batch-norm statistics, so the weights must be the file's
    assert _train(paired_root, tmp_path / "run", "--init-generator", str(path), "train.lr=0") == 0
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["train"]["init_generator"] == str(path)
    g = cfg["model"]["generator"]
    assert (g["arch"], g["ngf"], g["norm"]) == ("unet_32", 8, "batch")  # read off the file

    own = {k: v.detach() for k, v in net.named_parameters()}  # not the batch-norm statistics

    def weights(run: Path) -> dict[str, torch.Tensor]:
        state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["model"]
        return {k: state[f"g.{k}"] for k in own}

    started = weights(tmp_path / "run")
    assert all(torch.equal(started[k], own[k]) for k in own)
    # without the flag the same run starts elsewhere, so the equality above is not a given
    assert (
        _train(paired_root, tmp_path / "fresh", "model.generator.arch=unet_32", "train.lr=0") == 0
    )
    fresh = weights(tmp_path / "fresh")
    assert not torch.equal(fresh["downs.0.weight"], own["downs.0.weight"])

    # a pixmorph checkpoint works too; fine-tuning with a real learning rate moves the weights
    ckpt = tmp_path / "imported.pt"
    assert main(["import-weights", str(path), "--out", str(ckpt)]) == 0
    assert _train(paired_root, tmp_path / "tuned", "--init-generator", str(ckpt)) == 0
    tuned = weights(tmp_path / "tuned")
    delta = (tuned["downs.0.weight"] - own["downs.0.weight"]).abs().max().item()
    assert 0 < delta < 0.01  # two Adam steps of lr 2e-4 from the file's weights

    capsys.readouterr()
    mismatch = ["--init-generator", str(path), "model.generator.norm=instance"]
    assert _train(paired_root, tmp_path / "bad", *mismatch) == 2
    assert "model.generator.norm=batch" in capsys.readouterr().err
    resume = ["train", "--resume", str(tmp_path / "run"), "--init-generator", str(path)]
    assert main(resume) == 2
    assert "--init-generator starts a new run" in capsys.readouterr().err
