"""Convolutions on small maps as matmuls: the values and gradients of torch's convolutions."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config

from pixmorph.nets.blocks import init_weights
from pixmorph.nets.unet import UNet
from pixmorph.speed import smallconv
from pixmorph.speed.allocator import glibc, resolve_allocator
from pixmorph.speed.plan import (
    SpeedPlan,
    apply_plan,
    prepare_for_inference,
    strip_inference_speedups,
)
from pixmorph.speed.smallconv import (
    SmallMapConv2d,
    SmallMapConvTranspose2d,
    conv2d_few_outputs,
    conv2d_matmul,
    conv_transpose2d_matmul,
    restore_torch_convs,
    use_matmul_for_small_maps,
)
from pixmorph.training.trainer import Trainer


def values_and_grads(fn, x, w, b):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    b = None if b is None else b.clone().requires_grad_()
    y = fn(x, w, b)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=y.dtype)
    (y * g).sum().backward()
    return [y, x.grad, w.grad] + ([] if b is None else [b.grad])


CONVS = [  # (n, c_in, c_out, h, w, kernel, stride, padding)
    (1, 16, 8, 4, 4, 4, 2, 1),  # a U-Net down layer
    (3, 5, 7, 6, 9, 3, 1, 1),  # batch, odd sizes, not square
    (2, 4, 6, 7, 5, 4, 1, 2),  # stride 1, wide padding
    (1, 8, 4, 9, 9, 3, 2, 0),
]


FEW_OUTPUT_CONVS = [  # (n, c_in, c_out, h, w, kernel, padding), stride 1
    (1, 16, 1, 12, 12, 4, 1),  # a PatchGAN's last layer
    (2, 6, 3, 9, 7, 7, 3),
    (1, 5, 2, 8, 10, 3, 0),
    (2, 4, 1, 6, 5, 4, 2),  # padding > kernel/2: output larger than the input
]


@pytest.mark.parametrize("case", FEW_OUTPUT_CONVS)
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_few_outputs_is_conv2d(case, bias):
    n, ci, co, h, w, k, p = case
    torch.manual_seed(0)
    x, wt = torch.randn(n, ci, h, w), torch.randn(co, ci, k, k)
    b = torch.randn(co) if bias else None
    ref = values_and_grads(lambda x, w, b: F.conv2d(x, w, b, 1, p), x, wt, b)
    got = values_and_grads(lambda x, w, b: conv2d_few_outputs(x, w, b, (p, p)), x, wt, b)
    for r, g in zip(ref, got, strict=True):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_matmul_is_conv2d(case, bias):
    n, ci, co, h, w, k, s, p = case
    torch.manual_seed(0)
    x, wt = torch.randn(n, ci, h, w), torch.randn(co, ci, k, k)
    b = torch.randn(co) if bias else None
    ref = values_and_grads(lambda x, w, b: F.conv2d(x, w, b, s, p), x, wt, b)
    got = values_and_grads(lambda x, w, b: conv2d_matmul(x, w, b, (s, s), (p, p)), x, wt, b)
    for r, g in zip(ref, got, strict=True):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


TRANSPOSED = [  # (n, c_in, c_out, h, w, kernel, stride, padding, output_padding)
    (1, 16, 8, 2, 2, 4, 2, 1, 0),  # a U-Net up layer
    (2, 6, 3, 5, 7, 4, 2, 1, 0),  # an RGB output layer, odd sizes
    (1, 5, 4, 3, 4, 3, 2, 1, 1),  # output_padding
    (3, 4, 6, 4, 4, 3, 1, 0, 0),
]


@pytest.mark.parametrize("case", TRANSPOSED)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose2d_matmul_is_conv_transpose2d(case, bias):
    n, ci, co, h, w, k, s, p, op = case
    torch.manual_seed(0)
    x, wt = torch.randn(n, ci, h, w), torch.randn(ci, co, k, k)
    b = torch.randn(co) if bias else None

    def ref_fn(x, w, b):
        return F.conv_transpose2d(x, w, b, s, p, op)

    def fast_fn(x, w, b):
        return conv_transpose2d_matmul(x, w, b, (s, s), (p, p), (op, op))

    pairs = zip(
        values_and_grads(ref_fn, x, wt, b), values_and_grads(fast_fn, x, wt, b), strict=True
    )
    for r, g in pairs:
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return init_weights(UNet(3, 3, ngf=8, depth=6, norm="batch", dropout=False))


def test_a_swapped_unet_matches_torch_in_values_gradients_and_state_dict(monkeypatch):
    net = unet()
    fast = copy.deepcopy(net)
    assert use_matmul_for_small_maps(fast) == sum(
        isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in net.modules()
    )
    assert list(fast.state_dict()) == list(net.state_dict())
    calls = []
    real = smallconv.conv2d_matmul
    monkeypatch.setattr(smallconv, "conv2d_matmul", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(2, 3, 64, 64)
    ys = []
    for m in (net, fast):
        y = m(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        ys.append(y)
    # 64 px in, depth 6: the layers at 8x8 and below take the matmul path, the others torch's
    assert 0 < len(calls) < sum(isinstance(m, SmallMapConv2d) for m in fast.modules())
    torch.testing.assert_close(ys[1], ys[0], rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(net.named_parameters(), fast.parameters(), strict=True):
        err = float((q.grad - p.grad).norm() / p.grad.norm())
        assert err < 1e-4, f"{name}: gradient {err:.2g} off"  # measured ~1e-6 (rounding)
    restore_torch_convs(fast)
    assert not any(isinstance(m, SmallMapConv2d | SmallMapConvTranspose2d) for m in fast.modules())


def test_bf16_autocast_through_the_matmul_path_stays_close():
    net = unet().eval()
    fast = copy.deepcopy(net)
    use_matmul_for_small_maps(fast)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        a, b = net(x).float(), fast(x).float()
    assert (a - b).abs().max() < 0.02  # both bf16; they differ by rounding order only


def test_inference_in_bf16_uses_the_matmul_path_and_strips_back():
    net = unet().eval()
    fast = prepare_for_inference(copy.deepcopy(net), "bf16", channels_last=True)
    assert any(isinstance(m, SmallMapConvTranspose2d) for m in fast.modules())
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert (fast(x) - net(x)).abs().max() < 0.03
    plain = strip_inference_speedups(fast)
    assert {type(m) for m in plain.modules()} == {type(m) for m in net.modules()}
    # fp32 keeps torch's kernels: translation at --precision fp32 stays bit-for-bit
    same = prepare_for_inference(copy.deepcopy(net), "fp32", channels_last=False)
    assert not any(isinstance(m, SmallMapConv2d) for m in same.modules())


def test_training_plan_swaps_every_network_and_checkpoints_load_into_torch_modules(
    paired_root, tmp_path
):
    cfg = tiny_config(paired_root, tmp_path, train={"precision": "fp32"})
    method = Trainer(cfg).build()
    apply_plan(method, SpeedPlan(small_maps=True))
    for net in (method.g, method.d):
        assert any(isinstance(m, SmallMapConv2d) for m in net.modules())
    plain = Trainer(cfg).build()
    plain.g.load_state_dict(method.g.state_dict())  # same keys and shapes


def test_allocator_auto_reuses_on_a_cpu_with_glibc_only():
    assert resolve_allocator("auto", "cuda") == "system"
    assert resolve_allocator("system", "cpu") == "system"
    assert resolve_allocator("auto", "cpu") == ("reuse" if glibc() is not None else "system")


FAULTS = """
import resource, sys, torch
from pixmorph.speed.allocator import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
for _ in range(2):
    torch.ones(1 << 23)  # 32 MiB, allocated and freed
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(1 << 23)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(glibc() is None, reason="the allocator setting acts on glibc only")
def test_reusing_freed_memory_removes_the_page_faults_of_repeated_large_tensors():
    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout.split()[-1])

    system, reuse = faults("system"), faults("reuse")
    # glibc's default mmaps each 32 MiB block afresh: ~8,000 faults (4 KiB pages) per tensor
    assert system > 10 * 4000
    assert reuse < system / 5  # measured: 81,930 against 8,193 (one block grows the heap)
