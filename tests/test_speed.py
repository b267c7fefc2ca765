"""Speed settings keep results right: gradients, precision choice, compile fallback, bf16 quality,
exported models, and the data pipeline with workers and cache."""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_tree
from PIL import Image

from pixmorph import device
from pixmorph.cli import main
from pixmorph.config import TrainConfig
from pixmorph.device import autocast, resolve_precision
from pixmorph.errors import ConfigError
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.inference.loading import load_generator
from pixmorph.methods.settings import build_config
from pixmorph.nets.blocks import init_weights
from pixmorph.nets.patchgan import PatchDiscriminator
from pixmorph.nets.resnet import ResNetGenerator
from pixmorph.nets.unet import UNet
from pixmorph.speed import plan as accel
from pixmorph.speed.allocator import glibc
from pixmorph.speed.plan import (
    SafeInstanceNorm2d,
    SpeedPlan,
    apply_plan,
    compile_with_fallback,
    is_compiled,
    resolve_speed,
    strip_inference_speedups,
    to_channels_last,
)
from pixmorph.training.trainer import Trainer, make_loader

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # these nets are tiny: a second thread costs more in synchronisation than it computes
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- gradients of the fast paths ----------------------------------------------------------

NETS = {
    # the InstanceNorm + channels_last + batch 1 trap lives in the CycleGAN nets
    "resnet_instance": lambda: ResNetGenerator(3, 3, ngf=8, n_blocks=2, norm="instance"),
    "patchgan_instance": lambda: PatchDiscriminator(3, ndf=8, n_layers=3, norm="instance"),
    "unet_batch": lambda: UNet(3, 3, ngf=8, depth=5, norm="batch", dropout=False),
}


def weight_grads(net: torch.nn.Module, x: torch.Tensor, precision: str, channels_last: bool):
    """Weight gradients of a fixed random projection of the output (every output counts)."""
    net = copy.deepcopy(net)
    if channels_last:
        to_channels_last(net)
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(CPU, precision):
        y = net(x)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    (y.float() * w).mean().backward()
    return {n: p.grad.double() for n, p in net.named_parameters()}


def worst_errors(grads, ref) -> tuple[float, float]:
    """(max relative error, min cosine) over parameters whose gradient is not ~0.

    Conv biases in front of an instance norm get a gradient of exactly 0 in theory (the norm
    removes the mean); their rounding noise says nothing and is left out.
    """
    scale = max(g.norm() for g in ref.values())
    keys = [k for k in ref if ref[k].norm() > 1e-3 * scale]
    rel = max(float((grads[k] - ref[k]).norm() / ref[k].norm()) for k in keys)
    cos = min(
        float(torch.nn.functional.cosine_similarity(grads[k].flatten(), ref[k].flatten(), dim=0))
        for k in keys
    )
    return rel, cos


@pytest.mark.parametrize("name", list(NETS))
def test_fast_paths_give_the_gradients_of_fp32_nchw_at_batch_1(name):
    # measured: channels_last fp32 ~1e-6 off; bf16 0.13-0.21 (cos > 0.97); the unfixed
    # InstanceNorm trap 1.43 (cos ~ -0.06) in fp32 and bf16 alike
    torch.manual_seed(0)
    net = init_weights(NETS[name]())
    x = torch.randn(1, 3, 32, 32)
    ref = weight_grads(net, x, "fp32", channels_last=False)
    rel, _ = worst_errors(weight_grads(net, x, "fp32", channels_last=True), ref)
    assert rel < 1e-4, f"channels_last fp32 gradients are {rel:.2g} off"
    for cl in (False, True):
        rel, cos = worst_errors(weight_grads(net, x, "bf16", channels_last=cl), ref)
        assert rel < 0.5 and cos > 0.9, f"bf16 channels_last={cl}: rel {rel:.2g}, cos {cos:.3f}"


def test_channels_last_training_steps_match_nchw(paired_root, tmp_path):
    # whole pix2pix steps (ResNet G and PatchGAN D with instance norm, batch 1) prepared as the
    # trainer prepares them: the losses and the trained nets' outputs agree with plain NCHW
    model = {
        "generator": {"arch": "resnet_6blocks", "norm": "instance", "dropout": False},
        "discriminator": {"norm": "instance"},
    }
    train = {"batch_size": 1, "precision": "fp32", "adam": "foreach"}
    probe = torch.rand(1, 3, 32, 32) * 2 - 1
    runs = {}
    for cl in (False, True):
        cfg = tiny_config(paired_root, tmp_path, train={**train, "channels_last": cl}, model=model)
        method = Trainer(cfg).build()
        assert method.runtime.plan.channels_last is cl
        assert any(isinstance(m, SafeInstanceNorm2d) for m in method.modules()) is cl
        batches = iter(make_loader(method.make_dataset(cfg, True), cfg, 0, CPU))
        losses = [method.train_step(next(batches), step) for step in (1, 2, 3)]
        with torch.no_grad():
            fake = method.g(probe)
            outputs = (fake, method.d(torch.cat([probe, fake], 1)))
        runs[cl] = losses, outputs
    for a, b in zip(runs[False][0], runs[True][0], strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    for a, b in zip(runs[False][1], runs[True][1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


# --- choosing settings --------------------------------------------------------------------


def test_auto_precision_follows_the_hardware_and_size(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", CPU, 256) == "fp32"
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU, 256) == "bf16"
    assert resolve_precision("auto", CPU, 32) == "fp32"  # too small for bf16 to pay
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", cuda) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("fp32", cuda) == "fp32"


def test_fp16_on_a_cpu_is_a_clear_error(paired_root, tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device.*bf16 or fp32"):
        resolve_precision("fp16", CPU)
    assert (
        main(["train", f"--data={paired_root}", f"--out={tmp_path}", "train.precision=fp16"]) == 2
    )


def test_a_run_trained_in_fp16_on_cuda_translates_on_a_cpu(trained_run, tmp_path):
    from pixmorph.checkpoint import load_file, save_atomic

    ckpt = load_file(trained_run / "checkpoints" / "latest.pt")
    ckpt["config"]["train"]["precision"] = "fp16"  # as a CUDA run would have saved it
    save_atomic(ckpt, tmp_path / "fp16.pt")
    assert load_generator(tmp_path / "fp16.pt").precision == "fp32"


def test_resolve_speed_auto(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    plan = resolve_speed(TrainConfig(), CPU, 256)
    # measured on CPU: bf16 + fused Adam + small-map matmuls are fastest; channels_last slows
    # eager training; freed memory is kept for reuse where glibc is the C library
    reuse = "reuse" if glibc() is not None else "system"
    assert plan == SpeedPlan("bf16", False, False, "fused", small_maps=True, allocator=reuse)
    cuda = resolve_speed(TrainConfig(precision="bf16"), torch.device("cuda"), 256)
    assert cuda.channels_last and cuda.adam == "fused"
    assert not cuda.small_maps and cuda.allocator == "system"
    baseline = TrainConfig(
        precision="fp32", channels_last=False, adam="loop", small_maps=False, allocator="system"
    )
    assert resolve_speed(baseline, CPU) == SpeedPlan("fp32", False, False, "loop")
    # compile: only for networks it speeds up (ResNets), in runs long enough to repay it
    long_run, short_run = TrainConfig(steps=20000), TrainConfig(steps=500)
    if accel.compile_unavailable() is None:
        assert resolve_speed(long_run, CPU, 128, compile_helps=True).compile
    # ... in bf16: compiled fp32 steps were slower on a CPU
    fp32_long = TrainConfig(steps=20000, precision="fp32")
    assert not resolve_speed(fp32_long, CPU, 128, compile_helps=True).compile
    assert not resolve_speed(short_run, CPU, 128, compile_helps=True).compile
    assert not resolve_speed(long_run, CPU, 128, compile_helps=False).compile
    assert not resolve_speed(TrainConfig(compile=False), CPU, 128, compile_helps=True).compile


def test_optimizer_follows_the_setting_and_survives_resume_with_another(paired_root, tmp_path):
    loop = Trainer(tiny_config(paired_root, tmp_path, train={"adam": "loop"})).build()
    fused = Trainer(tiny_config(paired_root, tmp_path, train={"adam": "fused"})).build()
    assert loop.runtime.optimizers["g"].defaults["foreach"] is False
    assert fused.runtime.optimizers["g"].defaults["fused"] is True
    batch = next(iter(make_loader(loop.make_dataset(loop.cfg, True), loop.cfg, 0, CPU)))
    loop.train_step(batch, 1)
    fused.runtime.load_state_dict(loop.runtime.state_dict())
    group = fused.runtime.optimizers["g"].param_groups[0]
    assert group["fused"] is True and group["foreach"] is False
    fused.train_step(batch, 2)  # the fused kernel runs on the loop's saved state


# --- torch.compile fallback ---------------------------------------------------------------


def _fails_forward(graph, inputs):
    raise RuntimeError("no C++ compiler found")


def _fails_backward():
    from torch._dynamo.backends.common import aot_autograd

    def broken(graph, inputs):
        raise RuntimeError("no C++ compiler found")

    return aot_autograd(fw_compiler=lambda graph, inputs: graph, bw_compiler=broken)


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_compile_failure_falls_back_to_eager_with_a_warning(caplog, where):
    net = ResNetGenerator(3, 3, ngf=8, n_blocks=1)
    x = torch.randn(1, 3, 16, 16)
    expected = net(x)
    expected.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    keys = list(net.state_dict())

    compile_with_fallback(net, backend=_fails_forward if where == "forward" else _fails_backward())
    assert is_compiled(net) and list(net.state_dict()) == keys
    with caplog.at_level(logging.WARNING, logger="pixmorph.speed.plan"):
        out = net(x)  # a backward that cannot compile fails here too, not in backward()
    torch.testing.assert_close(out, expected)
    assert "torch.compile failed" in caplog.text and "no C++ compiler" in caplog.text
    assert not is_compiled(net)  # eager for good: no second attempt, no second warning
    out.sum().backward()
    for p, g in zip(net.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_compile_unavailable_leaves_the_network_eager(monkeypatch, caplog):
    monkeypatch.setattr(accel, "compile_unavailable", lambda: "no dynamo on this Python")
    net = ResNetGenerator(3, 3, ngf=8, n_blocks=1)
    with caplog.at_level(logging.WARNING, logger="pixmorph.speed.plan"):
        compile_with_fallback(net)
    assert not is_compiled(net) and "no dynamo on this Python" in caplog.text


def test_a_genuine_error_is_not_hidden_by_the_fallback():
    net = compile_with_fallback(ResNetGenerator(3, 3, ngf=8, n_blocks=1), backend="eager")
    with pytest.raises(RuntimeError):
        net(torch.randn(1, 5, 16, 16))  # wrong channel count: eager fails as well


# --- bf16 quality -------------------------------------------------------------------------


def _trained_psnr(root, out, precision: str, seed: int) -> float:
    cfg = tiny_config(
        root,
        out,
        train={
            "steps": 150,
            "batch_size": 4,
            "sample_every": 0,
            "checkpoint_every": 150,
            "log_every": 50,
            "seed": seed,
            "precision": precision,
        },
        model={"generator": {"ngf": 16}, "discriminator": {"ndf": 16}},
    )
    trainer = Trainer(cfg)
    method = trainer.build()
    assert method.precision == precision
    trainer.fit(method)
    test_set = trainer.method_cls.make_dataset(cfg, train=False)
    return evaluate_paired(load_generator(out), test_set)["mean"]["psnr"]


def test_bf16_training_reaches_the_psnr_of_fp32(paired_root, tmp_path):
    # measured at 150 steps, seeds 0-5: fp32 18.98-19.35 dB, bf16 minus fp32 per seed
    # -0.11..+0.11 dB (mean +0.005); the mean of two seeds keeps well inside 0.3 dB
    seeds = (0, 1)
    psnr = {
        p: [_trained_psnr(paired_root, tmp_path / f"{p}{s}", p, s) for s in seeds]
        for p in ("fp32", "bf16")
    }
    mean = {p: sum(v) / len(v) for p, v in psnr.items()}
    assert min(psnr["fp32"]) > 17.5, psnr  # both learned (15.2 dB untrained)
    assert abs(mean["bf16"] - mean["fp32"]) < 0.3, psnr


# --- inference: bf16 weights, exported models ---------------------------------------------


@pytest.fixture(scope="module", params=["unet_batch", "resnet_instance"])
def trained_run(request, paired_root, tmp_path_factory):
    """A briefly trained run: a U-Net with batch norm, or a ResNet with instance norm."""
    run = tmp_path_factory.mktemp(request.param)
    model = {"generator": {"ngf": 8}}
    if request.param == "resnet_instance":
        model["generator"] = {"ngf": 8, "arch": "resnet_6blocks", "norm": "instance"}
    Trainer(tiny_config(paired_root, run, train={"steps": 4}, model=model)).fit()
    return run


def test_bf16_weights_translate_close_to_fp32_and_strip_back(trained_run):
    ref = load_generator(trained_run)
    fast = load_generator(trained_run, precision="bf16")
    assert next(fast.generator.module.parameters()).dtype == torch.bfloat16
    x = torch.rand(2, 3, 40, 52) * 2 - 1
    y = fast(x)
    assert y.dtype == torch.float32 and y.is_contiguous()
    assert (y - ref(x)).abs().mean() < 0.02  # bf16 keeps ~3 significant digits
    net = strip_inference_speedups(fast.generator.module)
    assert not any(isinstance(m, SafeInstanceNorm2d) for m in net.modules())
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in net.parameters())
    side = ref.generator.size_multiple * max(1, 32 // ref.generator.size_multiple)
    xm = torch.rand(1, 3, side, 2 * side) * 2 - 1
    assert (net(xm) - ref.generator.module(xm)).abs().mean() < 0.02  # weights stay bf16-rounded


def test_onnx_export_runs_in_onnxruntime_like_pytorch(trained_run, tmp_path):
    pytest.importorskip("onnxruntime")
    ref = load_generator(trained_run)
    assert main(["export", "--checkpoint", str(trained_run), "--format", "onnx"]) == 0
    onnx_file = trained_run / "generator.onnx"
    ort = load_generator(onnx_file)
    assert ort.generator.size_multiple == ref.generator.size_multiple
    assert ort.config.model == ref.config.model
    for shape in ((1, 3, 32, 32), (3, 3, 45, 70)):  # other batch sizes and odd sizes pad
        x = torch.rand(shape) * 2 - 1
        assert (ort(x) - ref(x)).abs().max() < 1e-3


def test_torchscript_export_loads_and_matches(trained_run, tmp_path):
    from pixmorph.inference.export import export_torchscript

    with pytest.raises(ConfigError, match="precision='fp32'"):  # never export rounded weights
        export_torchscript(load_generator(trained_run, precision="bf16"), tmp_path / "x")
    ref = load_generator(trained_run)
    path = export_torchscript(ref, tmp_path / "g.torchscript")
    ts = load_generator(path)
    x = torch.rand(2, 3, 48, 64) * 2 - 1
    assert (ts(x) - ref(x)).abs().max() < 1e-5
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, still loads it
        warnings.simplefilter("ignore", DeprecationWarning)
        plain = torch.jit.load(str(path))  # runs without pixmorph
    side = ref.generator.size_multiple * max(1, 32 // ref.generator.size_multiple)
    xm = torch.rand(1, 3, 2 * side, side) * 2 - 1
    assert (plain(xm) - ref.generator.module(xm)).abs().max() < 1e-5


def test_compiled_translation_matches_the_eager_one(paired_root, tmp_path, capsys):
    # one network (a tiny U-Net) is enough: a cold compile takes ~10 s even for it
    if accel.compile_unavailable():
        pytest.skip(accel.compile_unavailable())
    Trainer(
        tiny_config(paired_root, tmp_path, train={"steps": 2}, model={"generator": {"ngf": 8}})
    ).fit()
    eager = load_generator(tmp_path, precision="bf16")
    fast = load_generator(tmp_path, precision="bf16", compile=True)
    assert is_compiled(fast.generator.module)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = fast(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert (y - eager(x)).abs().max() < 0.03  # both bf16; fusion changes the rounding only
    assert torch.equal(fast(x), y)  # the compiled graph is reused
    cmd = ["translate", "--checkpoint", str(tmp_path), "--input", str(tmp_path), "--output"]
    assert main([*cmd, str(tmp_path / "o"), "--engine", "onnx", "--compile"]) != 0
    assert "--compile applies to --engine torch" in capsys.readouterr().err


def test_translate_cli_with_the_onnx_engine(trained_run, tmp_path):
    pytest.importorskip("onnxruntime")
    img = tmp_path / "in" / "x.png"
    img.parent.mkdir()
    # noise, not a flat colour: instance norm of a flat image divides rounding noise by ~0
    pixels = np.random.default_rng(0).integers(0, 256, (29, 37, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(img)
    outs = {}
    for args in (["--engine", "onnx"], ["--precision", "fp32"]):
        out = tmp_path / args[1]
        cmd = ["translate", "--checkpoint", str(trained_run), "--input", str(img.parent)]
        assert main([*cmd, "--output", str(out), *args]) == 0
        outs[args[1]] = torch.from_numpy(np.array(Image.open(out / "x.png"))).float()
    assert (outs["onnx"] - outs["fp32"]).abs().max() <= 1  # at most one 8-bit level


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit, used here on purpose
def test_an_exported_file_without_metadata_is_refused(tmp_path):
    from pixmorph.errors import CheckpointError

    path = tmp_path / "plain.torchscript"
    torch.jit.save(torch.jit.trace(torch.nn.Conv2d(3, 3, 1), torch.rand(1, 3, 4, 4)), str(path))
    with pytest.raises(CheckpointError, match="not exported by pixmorph"):
        load_generator(path)


# --- data pipeline ------------------------------------------------------------------------


def test_workers_and_cache_give_the_batches_of_the_plain_loader(paired_root, tmp_path):
    batches = {}
    for workers, cache in ((0, False), (2, True)):
        cfg = build_config(
            tiny_tree(paired_root, tmp_path, data={"num_workers": workers, "cache": cache})
        )
        ds = Trainer(cfg).method_cls.make_dataset(cfg, train=True)
        assert (ds.images.cache is not None) is cache
        loader = iter(make_loader(ds, cfg, start_step=3, device=CPU))
        batches[workers] = [next(loader) for _ in range(4)]
    for a, b in zip(batches[0], batches[2], strict=True):
        assert a["path"] == b["path"]
        torch.testing.assert_close(a["a"], b["a"], rtol=0, atol=0)
        torch.testing.assert_close(a["b"], b["b"], rtol=0, atol=0)


def test_apply_plan_reaches_every_network(paired_root, tmp_path):
    cfg = tiny_config(paired_root, tmp_path, train={"precision": "fp32"})
    method = Trainer(cfg).build()
    apply_plan(method, SpeedPlan(channels_last=True))
    for net in (method.g, method.d):
        w = next(p for p in net.parameters() if p.dim() == 4)
        assert w.is_contiguous(memory_format=torch.channels_last)
