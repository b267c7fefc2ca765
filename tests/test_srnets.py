"""Tests for the SRGAN generator (SRResNet) and discriminator at tiny sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixmorph.nets.sr_discriminator import SRDiscriminator
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


def test_discriminator_layers_follow_the_paper() -> None:
    d = SRDiscriminator(n_feats=8)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 64, 64]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    # BN after every conv but the first; a LeakyReLU(0.2) after each.
    kinds = [type(m) for m in d.features]
    assert kinds[:2] == [nn.Conv2d, nn.LeakyReLU]
    assert kinds[2:] == [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU] * 7
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    dense = [m for m in d.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(64 * 6 * 6, 1024), (1024, 1)]


def test_discriminator_default_param_count() -> None:
    # The first conv keeps its bias (no BN follows); the other seven feed BN and have none.
    convs = conv(3, 64, 3) + conv(64, 64, 3, bias=False)  # 1,792 + 36,864
    convs += conv(64, 128, 3, bias=False) + conv(128, 128, 3, bias=False)  # 73,728 + 147,456
    convs += conv(128, 256, 3, bias=False) + conv(256, 256, 3, bias=False)  # 294,912 + 589,824
    convs += conv(256, 512, 3, bias=False) + conv(512, 512, 3, bias=False)  # 1,179,648 + 2,359,296
    bns = 2 * (64 + 128 + 128 + 256 + 256 + 512 + 512)  # 3,712
    dense = (512 * 6 * 6 * 1024 + 1024) + (1024 * 1 + 1)  # 18,875,392 + 1,025
    assert convs + bns + dense == 23_563_649
    assert n_params(SRDiscriminator()) == convs + bns + dense


@pytest.mark.parametrize("size", [(96, 96), (64, 64), (128, 128), (50, 71)])
def test_discriminator_logit_shape(size: tuple[int, int]) -> None:
    d = SRDiscriminator(in_ch=3, n_feats=8)
    assert d(torch.randn(2, 3, *size)).shape == (2, 1)


@pytest.mark.parametrize("input_size", [96, 128])
def test_discriminator_pool_is_identity_at_input_size(input_size: int) -> None:
    d = SRDiscriminator(n_feats=8, input_size=input_size).eval()
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad():
        feats = d.features(x)
        assert feats.shape == (2, 64, input_size // 16, input_size // 16)
        assert torch.equal(d.pool(feats), feats)
        assert torch.equal(d(x), d.head(feats))


@pytest.mark.parametrize("input_size", [0, 90, 100])
def test_discriminator_rejects_input_size_not_multiple_of_16(input_size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        SRDiscriminator(input_size=input_size)


def test_lightweight_options_param_count_and_layers() -> None:
    # no BN (conv biases instead), one conv to 3*4*4 channels + PixelShuffle(4), no 9x9 tail
    f, prelu = 32, 1
    net = SRResNet(3, 3, 4, f, 2, batch_norm=False, upsample="direct", bicubic_skip=True)
    head = conv(3, f, 9) + prelu
    body = 2 * (2 * conv(f, f, 3) + prelu) + conv(f, f, 3)
    up = conv(f, 3 * 16, 3)
    assert n_params(net) == head + body + up
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    shuffles = [m for m in net.modules() if isinstance(m, nn.PixelShuffle)]
    assert [m.upscale_factor for m in shuffles] == [4]


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_direct_upsampler_shapes(scale: int) -> None:
    net = SRResNet(3, 3, scale, 8, 1, batch_norm=False, upsample="direct")
    assert net(torch.randn(2, 3, 9, 14)).shape == (2, 3, 9 * scale, 14 * scale)


@pytest.mark.parametrize("upsample", ["stages", "direct"])
def test_bicubic_skip_starts_as_a_bicubic_upscaler(upsample: str) -> None:
    torch.manual_seed(0)
    net = SRResNet(3, 3, 4, 8, 1, batch_norm=False, upsample=upsample, bicubic_skip=True)
    x = torch.rand(1, 3, 12, 10) * 2 - 1
    bicubic = torch.nn.functional.interpolate(x, size=(48, 40), mode="bicubic")
    assert torch.allclose(net(x), bicubic, atol=1e-6)
    last = net.tail if upsample == "stages" else net.upsample[0]
    with torch.no_grad():  # and the residual is added on top of it, not instead
        last.bias.fill_(0.1)
    assert torch.allclose(net(x), bicubic + 0.1, atol=1e-5)
    # the last conv still gets a gradient (its input is not zero), so the residual can grow
    net(x).sum().backward()
    assert last.weight.grad.abs().sum() > 0


def test_unknown_upsampler_is_refused() -> None:
    with pytest.raises(ValueError, match="upsample"):
        SRResNet(upsample="deconv")
