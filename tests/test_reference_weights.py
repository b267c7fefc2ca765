"""Reference pix2pix/CycleGAN weights: layout facts, exact round trips, strict errors with hints.

The reference-style nets below are built from the layout described in issue 7 (Sequential
indices, an in-place LeakyReLU that also rewrites the U-Net skip), independently of pixmorph's
converter, so a wrong table or a wrong claim about the maths fails here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from pixmorph.errors import CheckpointError
from pixmorph.interop.facts import read_facts
from pixmorph.interop.layout import module_table, to_reference
from pixmorph.interop.weights import (
    generator_weights,
    import_reference,
    load_any,
    reference_state_dict,
)
from pixmorph.nets.factory import GeneratorConfig, build_generator
from pixmorph.nets.patchgan import PatchDiscriminator


# --- an independent reference-style builder, from the layout facts ------------------------------
def _norm(norm: str, c: int) -> nn.Module:
    return nn.BatchNorm2d(c) if norm == "batch" else nn.InstanceNorm2d(c)


class _Level(nn.Module):
    """One nesting level: `model` is the Sequential of the layout; inner levels concatenate."""

    def __init__(self, layers: list[nn.Module], outermost: bool) -> None:
        super().__init__()
        self.model = nn.Sequential(*layers)
        self.outermost = outermost

    def forward(self, x: Tensor) -> Tensor:
        y = self.model(x)  # the in-place LeakyReLU at model.0 has already rewritten x
        return y if self.outermost else torch.cat([x, y], 1)


class _Wrap(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def ref_unet(ngf: int, depth: int, norm: str, dropout: bool, in_ch: int = 3, out_ch: int = 3):
    w = [ngf * min(2**k, 8) for k in range(depth)]
    bias = norm != "batch"
    k = depth - 1  # innermost: [0 leaky, 1 conv, 2 relu, 3 convT, 4 norm]
    level = _Level(
        [
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w[k - 1], w[k], 4, 2, 1, bias=bias),
            nn.ReLU(True),
            nn.ConvTranspose2d(w[k], w[k - 1], 4, 2, 1, bias=bias),
            _norm(norm, w[k - 1]),
        ],
        outermost=False,
    )
    for k in range(depth - 2, 0, -1):  # [leaky, conv, norm, inner, relu, convT, norm, (dropout)]
        layers = [
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(w[k - 1], w[k], 4, 2, 1, bias=bias),
            _norm(norm, w[k]),
            level,
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * w[k], w[k - 1], 4, 2, 1, bias=bias),
            _norm(norm, w[k - 1]),
        ]
        if dropout and w[k - 1] == 8 * ngf:  # the 512-wide blocks around the innermost
            layers.append(nn.Dropout(0.5))
        level = _Level(layers, outermost=False)
    outer = [
        nn.Conv2d(in_ch, w[0], 4, 2, 1, bias=bias),
        level,
        nn.ReLU(True),
        nn.ConvTranspose2d(2 * w[0], out_ch, 4, 2, 1),
        nn.Tanh(),
    ]
    return _Wrap(_Level(outer, outermost=True))


class _Residual(nn.Module):
    def __init__(self, c: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = norm != "batch"
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(c, c, 3, bias=bias),
            _norm(norm, c),
            nn.ReLU(True),
        ]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=bias), _norm(norm, c)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


def ref_resnet(ngf: int, n_blocks: int, norm: str, dropout: bool, in_ch: int = 3, out_ch: int = 3):
    bias = norm != "batch"
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), _norm(norm, ngf)]
    layers += [nn.ReLU(True)]
    for m in (1, 2):
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=bias), _norm(norm, ngf * m * 2)]
        layers += [nn.ReLU(True)]
    layers += [_Residual(ngf * 4, norm, dropout) for _ in range(n_blocks)]
    for m in (4, 2):
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, 1, bias=bias)]
        layers += [_norm(norm, ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
    return _Wrap(nn.Sequential(*layers))


def reference_net(arch: str, ngf: int, norm: str, dropout: bool) -> nn.Module:
    if arch.startswith("unet_"):
        return ref_unet(ngf, int(arch[5:]).bit_length() - 1, norm, dropout)
    return ref_resnet(ngf, int(arch[7]), norm, dropout)


# --- helpers ----------------------------------------------------------------------------------
def pixmorph_net(arch: str, norm: str, dropout: bool, ngf: int = 8, in_ch: int = 3) -> nn.Module:
    torch.manual_seed(0)
    net = build_generator(GeneratorConfig(arch, ngf, norm, dropout), in_ch, 3)  # type: ignore[arg-type]
    with torch.no_grad():  # non-trivial weights and running statistics, so every tensor counts
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    return net.eval()


def meta_reference(arch: str, norm: str, dropout: bool) -> dict[str, Tensor]:
    """Full-size (ngf 64) reference-layout tensors, without memory or compute."""
    with torch.device("meta"):
        net = build_generator(GeneratorConfig(arch, 64, norm, dropout), 3, 3)  # type: ignore[arg-type]
    return to_reference(net.state_dict(), module_table(net))


def shapes(state: dict[str, Tensor]) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in state.items()}


def n_params(state: dict[str, Tensor]) -> int:
    # parameters only: running statistics are buffers
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return sum(v.numel() for k, v in state.items() if not k.endswith(stats))


ARCHS = ["unet_32", "unet_64", "unet_128", "resnet_6blocks", "resnet_9blocks"]
COMBOS = [(a, n, d) for a in ARCHS for n in ("batch", "instance") for d in (True, False)]


# --- layout facts at full size -----------------------------------------------------------------
def test_resnet_9blocks_instance_layout() -> None:
    s = shapes(meta_reference("resnet_9blocks", "instance", False))
    assert (
        len(s) == 48 and n_params(meta_reference("resnet_9blocks", "instance", False)) == 11_378_179
    )
    assert s["model.1.weight"] == [64, 3, 7, 7] and s["model.1.bias"] == [64]
    assert s["model.4.weight"] == [128, 64, 3, 3] and s["model.7.weight"] == [256, 128, 3, 3]
    for k in range(10, 19):
        for j in (1, 5):
            assert s[f"model.{k}.conv_block.{j}.weight"] == [256, 256, 3, 3]
    assert s["model.19.weight"] == [256, 128, 3, 3] and s["model.22.weight"] == [128, 64, 3, 3]
    assert s["model.26.weight"] == [3, 64, 7, 7]
    assert not any("running" in k for k in s)


def test_resnet_6blocks_and_dropout_layouts() -> None:
    s = shapes(meta_reference("resnet_6blocks", "instance", False))
    blocks = {int(k.split(".")[1]) for k in s if "conv_block" in k}
    assert blocks == set(range(10, 16))
    assert s["model.16.weight"] == [256, 128, 3, 3] and s["model.19.weight"] == [128, 64, 3, 3]
    assert s["model.23.weight"] == [3, 64, 7, 7]
    d = shapes(meta_reference("resnet_9blocks", "instance", True))
    assert d["model.10.conv_block.6.weight"] == [256, 256, 3, 3]
    assert "model.10.conv_block.5.weight" not in d


def test_resnet_batch_norm_layout() -> None:
    s = shapes(meta_reference("resnet_9blocks", "batch", False))
    norms = ["model.2", "model.5", "model.8", "model.20", "model.23"]
    norms += [f"model.{k}.conv_block.{j}" for k in range(10, 19) for j in (2, 6)]
    tensors = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for n in norms:
        assert all(f"{n}.{t}" in s for t in tensors), n
    assert "model.1.bias" not in s and "model.19.bias" not in s  # batch norm brings the bias
    assert "model.26.bias" in s  # the output conv keeps its own


def test_unet_256_batch_dropout_layout() -> None:
    ref = meta_reference("unet_256", "batch", True)
    s = shapes(ref)
    assert len(s) == 82 and n_params(ref) == 54_413_955
    assert s["model.model.0.weight"] == [64, 3, 4, 4] and "model.model.0.bias" not in s
    assert s["model.model.3.weight"] == [128, 3, 4, 4] and s["model.model.3.bias"] == [3]
    assert s["model.model.1.model.1.weight"] == [128, 64, 4, 4]
    assert s["model.model.1.model.5.weight"] == [256, 64, 4, 4]
    inner = "model.model.1" + ".model.3" * 6 + ".model"  # level 7, the innermost
    assert s[f"{inner}.1.weight"] == [512, 512, 4, 4] and s[f"{inner}.3.weight"] == [512, 512, 4, 4]
    assert f"{inner}.4.running_mean" in s and f"{inner}.2.weight" not in s  # no down norm there
    assert read_facts(ref).arch == "unet_256"
    assert read_facts(meta_reference("unet_128", "batch", True)).arch == "unet_128"


def test_patch_discriminator_layout() -> None:
    net = PatchDiscriminator(6, 64, 3, "batch")
    s = shapes(to_reference(net.state_dict(), module_table(net)))
    assert s["model.0.weight"] == [64, 6, 4, 4] and "model.0.bias" in s
    for conv, norm in ((2, 3), (5, 6), (8, 9)):
        assert f"model.{conv}.weight" in s and f"model.{conv}.bias" not in s
        assert f"model.{norm}.running_mean" in s
    assert s["model.11.weight"] == [1, 512, 4, 4] and "model.11.bias" in s


# --- exact round trips -------------------------------------------------------------------------
@pytest.mark.parametrize(("arch", "norm", "dropout"), COMBOS)
def test_round_trip_matches_reference_style_net(
    arch: str, norm: str, dropout: bool, tmp_path: Path
) -> None:
    net = pixmorph_net(arch, norm, dropout)
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference_state_dict(net), path)
    ref = reference_net(arch, 8, norm, dropout)
    ref.load_state_dict(torch.load(path, weights_only=True), strict=True)
    ref.eval()
    size = int(arch[5:]) if arch.startswith("unet_") else 16
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        want = net(x)
        torch.testing.assert_close(ref(x.clone()), want, rtol=0, atol=1e-6)
        ckpt = load_any(path, arch=arch, norm=norm, dropout=dropout)
        back = pixmorph_net(arch, norm, dropout)  # same shapes, then overwritten
        back.load_state_dict({k[2:]: v for k, v in ckpt["model"].items()})
        assert torch.equal(back.eval()(x), want)
    g = ckpt["config"]["model"]["generator"]
    assert (g["arch"], g["ngf"], g["norm"], g["dropout"]) == (arch, 8, norm, dropout)


@pytest.mark.parametrize("arch", ["unet_64", "resnet_6blocks"])
def test_settings_are_read_off_the_file(arch: str, caplog: pytest.LogCaptureFixture) -> None:
    state = reference_state_dict(pixmorph_net(arch, "batch", True, in_ch=1))
    with caplog.at_level(logging.INFO, logger="pixmorph"):
        ckpt = import_reference(state, "f.pth")
    g, d = ckpt["config"]["model"]["generator"], ckpt["config"]["data"]
    assert (g["arch"], g["ngf"], g["norm"], g["dropout"]) == (arch, 8, "batch", True)
    assert (d["in_channels"], d["out_channels"]) == (1, 3)
    assert f"inferred arch {arch}" in caplog.text and "norm batch" in caplog.text
    if arch.startswith("unet_"):
        assert "cannot tell" in caplog.text  # U-Net dropout has no weights
    else:
        assert "dropout on (the second conv" in caplog.text


def test_data_parallel_prefix_and_legacy_tensors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inst = reference_state_dict(pixmorph_net("resnet_6blocks", "instance", False))
    old = {f"module.{k}": v for k, v in inst.items()}
    old["module.model.2.running_mean"] = torch.zeros(8)  # InstanceNorm stats of old PyTorch
    old["module.model.2.running_var"] = torch.ones(8)
    torch.save(old, tmp_path / "dp.pth")
    with caplog.at_level(logging.INFO, logger="pixmorph"):
        ckpt = load_any(tmp_path / "dp.pth")
    assert "stripped the 'module.' prefix" in caplog.text and "dropped 2" in caplog.text
    assert ckpt["config"]["model"]["generator"]["norm"] == "instance"
    batch = reference_state_dict(pixmorph_net("unet_32", "batch", False))
    no_counters = {k: v for k, v in batch.items() if not k.endswith("num_batches_tracked")}
    assert import_reference(no_counters, "f.pth")["config"]["model"]["generator"]["norm"] == "batch"


def test_safetensors_files_load(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    net = pixmorph_net("resnet_6blocks", "batch", False)
    save_file(reference_state_dict(net), tmp_path / "g.safetensors")
    ckpt = load_any(tmp_path / "g.safetensors")
    own = {k[2:]: v for k, v in ckpt["model"].items()}
    assert all(torch.equal(own[k], v) for k, v in net.state_dict().items())


# --- strict errors that say what fits -----------------------------------------------------------
@pytest.mark.parametrize(
    ("made", "given", "says"),
    [
        (("unet_64", "batch", True), {"norm": "instance"}, ["running_mean", "--norm batch"]),
        (("resnet_9blocks", "batch", False), {"norm": "instance"}, ["--norm batch"]),
        (("resnet_9blocks", "instance", False), {"norm": "batch"}, ["--norm instance"]),
        (("resnet_6blocks", "instance", True), {"dropout": False}, ["conv_block.6", "leave out"]),
        (
            ("resnet_6blocks", "instance", False),
            {"dropout": True},
            ["conv_block.5", "--no-dropout"],
        ),
        (("resnet_9blocks", "instance", False), {"arch": "resnet_6blocks"}, ["resnet_9blocks"]),
        (("unet_64", "batch", True), {"arch": "unet_32"}, ["--arch unet_64", "6 U-Net levels"]),
        (("unet_32", "instance", True), {"arch": "resnet_6blocks"}, ["--arch unet_32"]),
    ],
)
def test_mismatched_flags_say_what_fits(made: tuple, given: dict, says: list[str]) -> None:
    state = reference_state_dict(pixmorph_net(*made))
    with pytest.raises(CheckpointError) as e:
        import_reference(state, "latest_net_G.pth", **given)
    assert "latest_net_G.pth does not fit" in str(e.value)
    for text in says:
        assert text in str(e.value)


def test_files_that_are_no_generator_are_named(tmp_path: Path) -> None:
    d = PatchDiscriminator(6, 8, 3, "batch")
    with pytest.raises(CheckpointError, match="discriminator"):
        import_reference(to_reference(d.state_dict(), module_table(d)), "latest_net_D.pth")
    with pytest.raises(CheckpointError, match="not a pix2pix/CycleGAN generator"):
        import_reference({"encoder.weight": torch.zeros(1)}, "x.pth")
    torch.save({"epoch": 3, "weights": torch.zeros(1)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="neither a pixmorph checkpoint"):
        load_any(tmp_path / "odd.pth")


def test_init_weights_errors_speak_in_overrides(tmp_path: Path) -> None:
    torch.save(reference_state_dict(pixmorph_net("unet_32", "batch", True)), tmp_path / "g.pth")
    target = pixmorph_net("unet_32", "instance", True)
    with pytest.raises(CheckpointError, match="model.generator.norm=batch"):
        generator_weights(tmp_path / "g.pth", target)
    # instance norm and no norm have the same tensors; the settings still have to agree
    torch.save(reference_state_dict(target), tmp_path / "i.pth")
    with pytest.raises(CheckpointError, match="model.generator.norm=instance"):
        generator_weights(tmp_path / "i.pth", pixmorph_net("unet_32", "none", True))
    loaded = generator_weights(tmp_path / "i.pth", pixmorph_net("unet_32", "instance", False))
    assert all(torch.equal(loaded[k], v) for k, v in target.state_dict().items())
