"""Tests for the SRGAN generator (SRResNet) and discriminator at tiny sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixmorph.nets.srresnet import SRResNet


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def test_srresnet_default_param_count() -> None:
    # Written out from the layer list, not from the module: x4, 64 feats, 16 blocks, RGB.
    f, prelu, bn = 64, 1, 2 * 64  # one PReLU slope per layer; BN has weight and bias
    head = conv(3, f, 9) + prelu  # 3*64*81 + 64 + 1 = 15,617
    block = 2 * conv(f, f, 3, bias=False) + 2 * bn + prelu  # 2*36,864 + 256 + 1 = 73,985
    body = 16 * block + conv(f, f, 3, bias=False) + bn  # 1,183,760 + 36,992 = 1,220,752
    up = 2 * (conv(f, 4 * f, 3) + prelu)  # 2 * (147,456 + 256 + 1) = 295,426
    tail = conv(f, 3, 9)  # 64*3*81 + 3 = 15,555
    expected = head + body + up + tail
    assert expected == 1_547_350
    assert n_params(SRResNet()) == expected


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_srresnet_shapes_on_odd_sizes(scale: int) -> None:
    net = SRResNet(in_ch=3, out_ch=2, scale=scale, n_feats=8, n_blocks=1)
    out = net(torch.randn(2, 3, 17, 23))
    assert out.shape == (2, 2, 17 * scale, 23 * scale)


def test_srresnet_x3_uses_one_pixelshuffle3_stage() -> None:
    shuffles = [m for m in SRResNet(scale=3, n_feats=8).modules() if isinstance(m, nn.PixelShuffle)]
    assert [m.upscale_factor for m in shuffles] == [3]
    shuffles = [m for m in SRResNet(scale=8, n_feats=8).modules() if isinstance(m, nn.PixelShuffle)]
    assert [m.upscale_factor for m in shuffles] == [2, 2, 2]


@pytest.mark.parametrize("scale", [1, 5, 6, 16])
def test_srresnet_rejects_other_scales(scale: int) -> None:
    with pytest.raises(ValueError, match=r"one of \(2, 3, 4, 8\)"):
        SRResNet(scale=scale)


def test_srresnet_long_skip_starts_after_first_prelu() -> None:
    net = SRResNet(scale=2, n_feats=8, n_blocks=2).eval()
    final_bn = net.body[-1]
    nn.init.zeros_(final_bn.weight)  # silences the whole residual trunk
    nn.init.zeros_(final_bn.bias)
    x = torch.randn(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.allclose(net(x), net.tail(net.upsample(net.head(x))), atol=1e-6)


def test_srresnet_output_is_linear_not_tanh() -> None:
    net = SRResNet(scale=2, n_feats=8, n_blocks=1).eval()
    nn.init.constant_(net.tail.bias, 3.0)  # a tanh head could never exceed 1
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 8, 8)).min() > 1.0
