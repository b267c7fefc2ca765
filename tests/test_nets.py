"""Network shapes, parameter counts and the published layer choices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixmorph.nets.blocks import init_weights
from pixmorph.nets.factory import (
    DiscriminatorConfig,
    GeneratorConfig,
    build_discriminator,
    build_generator,
)
from pixmorph.nets.patchgan import PatchDiscriminator, PixelDiscriminator
from pixmorph.nets.unet import UNet


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_unet_256_has_the_published_parameter_count():
    assert count(UNet(3, 3, ngf=64, depth=8, norm="batch", dropout=True)) == 54_413_955


def test_patchgan_parameter_count_with_batch_norm():
    # convs followed by batch norm carry no bias (the norm's shift replaces it), as published:
    # 6208 + (131072+256) + (524288+512) + (2097152+1024) + 8193
    assert count(PatchDiscriminator(6, 64, 3, "batch")) == 2_768_705
    # with instance norm (no affine) those three convs get their bias back instead
    assert count(PatchDiscriminator(6, 64, 3, "instance")) == 2_768_705 - 1792 + 896


@pytest.mark.parametrize("depth,size", [(5, 32), (6, 64), (7, 128)])
def test_unet_keeps_size(depth: int, size: int):
    net = UNet(3, 2, ngf=8, depth=depth)
    assert net(torch.randn(2, 3, size, size)).shape == (2, 2, size, size)


def test_unet_design_details():
    net = UNet(3, 3, ngf=8, depth=8)
    # dropout only in the three 512-wide decoder levels above the bottleneck
    dropouts = [i for i, up in enumerate(net.ups) if any(isinstance(m, nn.Dropout) for m in up)]
    assert dropouts == [4, 5, 6]
    # no norm in the first encoder layer nor in the bottleneck
    assert isinstance(net.downs[0], nn.Conv2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.downs[-1])
    assert isinstance(net.ups[0][-1], nn.Tanh)
    out = net.eval()(torch.randn(1, 3, 256, 256))
    assert out.abs().max() <= 1.0


def test_patchgan_70x70_output_grid_and_pixel_variant():
    d = PatchDiscriminator(6, 8, 3)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert PixelDiscriminator(6, 8)(torch.randn(2, 6, 17, 9)).shape == (2, 1, 17, 9)


def test_init_is_normal_0_002():
    net = init_weights(UNet(3, 3, ngf=64, depth=5), 0.02)
    w = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.Conv2d)])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_factory_builds_every_norm(norm: str):
    g = build_generator(GeneratorConfig("unet_32", ngf=8, norm=norm), 3, 3)
    d = build_discriminator(DiscriminatorConfig("patch", ndf=8, norm=norm), 6)
    x = torch.randn(2, 3, 32, 32)
    y = g(x)
    assert y.shape == x.shape
    assert d(torch.cat([x, y], 1)).shape[1] == 1
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    has_in = any(isinstance(m, nn.InstanceNorm2d) for m in g.modules())
    assert (has_bn, has_in) == (norm == "batch", norm == "instance")


def test_spectral_norm_bounds_every_discriminator_conv():
    from torch import nn

    from pixmorph.nets.factory import DiscriminatorConfig, build_discriminator

    torch.manual_seed(0)
    spec = DiscriminatorConfig(ndf=8, norm="none", spectral_norm=True, init_gain=0.5)
    d = build_discriminator(spec, 6)
    plain = build_discriminator(DiscriminatorConfig(ndf=8, norm="none", init_gain=0.5), 6)
    x = torch.randn(2, 6, 64, 64)
    for _ in range(30):  # power iterations converge in training mode
        d(x)
    d.eval()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05
    # without it, the same init has weights far above 1: the option changes something
    sigmas = [
        torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item()
        for m in plain.modules()
        if isinstance(m, nn.Conv2d)
    ]
    assert max(sigmas) > 3
