"""Tests for the StyleGAN layers, generator and discriminator at tiny sizes (and counts at 1024)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.nets.stylegan import StyleGenerator, mix_ws, random_mix
from pixmorph.nets.stylegan_discriminator import StyleDiscriminator, minibatch_stddev
from pixmorph.nets.stylegan_layers import (
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    NoiseInjection,
    StyledConv,
)

TINY = {"z_dim": 16, "w_dim": 16, "n_mapping": 2, "channel_base": 256, "channel_max": 16}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_g(size: int = 32, **kw) -> StyleGenerator:
    torch.manual_seed(0)
    return StyleGenerator(size, **{**TINY, **kw})


def set_noise_strength(g: nn.Module, value: float) -> None:
    for m in g.modules():
        if isinstance(m, NoiseInjection):
            nn.init.constant_(m.strength, value)


def low_pass_fraction(d: Tensor, factor: int = 4) -> float:
    """Share of the energy of d left after averaging factor x factor blocks (a low-pass)."""
    return (F.avg_pool2d(d, factor).square().mean() / d.square().mean()).item()


def low_pass_correlation(a: Tensor, b: Tensor, factor: int = 8) -> float:
    """Mean correlation of 8x8-block-averaged images, per-channel means removed."""
    a, b = F.avg_pool2d(a, factor), F.avg_pool2d(b, factor)
    a = (a - a.mean(dim=(2, 3), keepdim=True)).flatten(1)
    b = (b - b.mean(dim=(2, 3), keepdim=True)).flatten(1)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean().item()


# ---------------------------------------------------------------- parameter counts at 1024


def styled_conv(w: int, c_in: int, c_out: int, k: int = 3) -> int:
    # affine A (w -> c_in, bias), weight, per-channel noise strength B, bias
    return (w * c_in + c_in) + c_out * c_in * k * k + c_out + c_out


def to_rgb(w: int, c_in: int) -> int:
    return (w * c_in + c_in) + 3 * c_in + 3


def test_param_counts_at_1024_match_stylegan2_config_f() -> None:
    # Widths min(32768 / res, 512): 512 up to 64 px, then 256, 128, 64, 32 at 1024.
    ch = {2**i: min(32768 // 2**i, 512) for i in range(2, 11)}
    mapping = 8 * (512 * 512 + 512)
    synth = 512 * 4 * 4 + styled_conv(512, 512, 512) + to_rgb(512, 512)
    noise_extra = ch[4] - 1  # StyleGAN2 has one noise strength per layer; here one per channel
    for r in [2**i for i in range(3, 11)]:
        synth += styled_conv(512, ch[r // 2], ch[r]) + styled_conv(512, ch[r], ch[r])
        synth += to_rgb(512, ch[r])
        noise_extra += 2 * (ch[r] - 1)
    g = StyleGenerator(1024)
    assert n_params(g.mapping_net) == mapping == 2_101_248
    assert n_params(g) == mapping + synth == 30_375_611
    # the published config-f generator: 30,370,060 parameters with a scalar noise strength
    assert n_params(g) - noise_extra == 30_370_060
    assert g.num_ws == 18

    conv = lambda c_in, c_out, k, bias=True: c_in * c_out * k * k + (c_out if bias else 0)  # noqa: E731
    disc = conv(3, ch[1024], 1)
    for r in [2**i for i in range(10, 2, -1)]:
        disc += (
            conv(ch[r], ch[r], 3) + conv(ch[r], ch[r // 2], 3) + conv(ch[r], ch[r // 2], 1, False)
        )
    disc += conv(513, 512, 3) + (512 * 16 * 512 + 512) + (512 + 1)
    # the published StyleGAN2 1024 discriminator: 29,012,513 parameters
    assert n_params(StyleDiscriminator(1024)) == disc == 29_012_513


# ---------------------------------------------------------------- layers


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalized_lr_gives_unit_variance_at_init(lr_mul: float) -> None:
    torch.manual_seed(0)
    lin = EqualLinear(256, 256, lr_mul=lr_mul)
    assert lin.weight.std().item() == pytest.approx(1.0 / lr_mul, rel=0.05)  # stored N(0,1)/lr_mul
    out = lin(torch.randn(512, 256))
    assert out.var().item() == pytest.approx(1.0, abs=0.1)
    conv = EqualConv2d(64, 64, 3, padding=1, lr_mul=lr_mul)
    out = conv(torch.randn(8, 64, 16, 16))[..., 1:-1, 1:-1]  # the border sees zero padding
    assert out.var().item() == pytest.approx(1.0, abs=0.1)


def test_demodulation_keeps_unit_variance_for_any_style() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 64, 24, 24)
    w = torch.randn(4, 16)
    variances = {}
    for demod in (True, False):
        conv = ModulatedConv2d(64, 32, 3, 16, demodulate=demod)
        for gain in (0.1, 1.0, 10.0):
            out = conv(x, w * gain)[..., 1:-1, 1:-1]  # (B, 32, 22, 22)
            variances[demod, gain] = out.var(dim=(2, 3)).mean(dim=1)  # per sample
    for gain in (0.1, 1.0, 10.0):
        assert torch.allclose(variances[True, gain], torch.ones(4), atol=0.15)
    # without demodulation the output scale follows the style
    assert (variances[False, 10.0] / variances[False, 0.1]).min() > 10


@pytest.mark.parametrize("upsample", [None, "bilinear", "transposed"])
def test_grouped_modulated_conv_treats_each_sample_alone(upsample: str | None) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 6, 3, 16, upsample=upsample)
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    out = conv(x, w)
    side = 16 if upsample else 8
    assert out.shape == (3, 6, side, side)
    for i in range(3):
        assert torch.allclose(out[i : i + 1], conv(x[i : i + 1], w[i : i + 1]), atol=1e-5)


def test_unknown_options_name_the_choices() -> None:
    with pytest.raises(ValueError, match="bilinear, transposed"):
        ModulatedConv2d(8, 8, 3, 16, upsample="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="demod, adain"):
        StyledConv(8, 8, 16, 8, modulation="spade")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="power of two"):
        StyleGenerator(48, **TINY)


# ---------------------------------------------------------------- generator


@pytest.mark.parametrize("modulation", ["demod", "adain"])
@pytest.mark.parametrize("upsample", ["bilinear", "transposed"])
def test_generator_shapes(modulation: str, upsample: str) -> None:
    g = tiny_g(16, modulation=modulation, upsample=upsample, img_channels=1)
    assert g.num_ws == 6  # convs 1 + 2 + 2, plus the last toRGB
    img = g(torch.randn(2, 16))
    assert img.shape == (2, 1, 16, 16) and torch.isfinite(img).all()


@pytest.mark.parametrize("modulation", ["demod", "adain"])
def test_truncation_zero_gives_the_mean_w_image_for_every_z(modulation: str) -> None:
    g = tiny_g(16, modulation=modulation)
    with torch.no_grad():
        for _ in range(3):
            g.mapping(torch.randn(8, 16), update_w_avg=True)
        assert g.w_avg.abs().sum() > 0
        imgs = g(torch.randn(4, 16), truncation=0.0, noise_mode="const")
        mean_img = g.synthesis(g.w_avg.expand(1, g.num_ws, -1), noise_mode="const")
        assert torch.allclose(imgs, mean_img.expand_as(imgs), atol=1e-5)
        # psi 0.5 lands halfway between w and w_avg
        z = torch.randn(2, 16)
        half = g.mapping(z, truncation=0.5)
        assert torch.allclose(half, (g.mapping(z) + g.w_avg) / 2, atol=1e-5)


def test_w_avg_update_is_a_running_mean() -> None:
    g = tiny_g(8)
    w = torch.randn(4, 16)
    g.update_w_avg(w, beta=0.9)
    assert torch.allclose(g.w_avg, 0.1 * w.mean(0))
    assert "w_avg" in g.state_dict()


def test_style_mixing_switches_at_the_layer() -> None:
    ws1, ws2 = torch.zeros(2, 6, 4), torch.ones(2, 6, 4)
    mixed = mix_ws(ws1, ws2, 4)
    assert mixed[:, :4].eq(0).all() and mixed[:, 4:].eq(1).all()
    assert random_mix(ws1, ws2, prob=0.0) is ws1
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        out = random_mix(ws1, ws2, prob=1.0, generator=gen)
        k = int(out[0, :, 0].argmax())  # the first layer from ws2
        assert 1 <= k < 6 and out[:, :k].eq(0).all() and out[:, k:].eq(1).all()


def test_style_mixing_at_fine_layers_changes_only_fine_scales() -> None:
    g = tiny_g(32)
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    with torch.no_grad():
        ws1, ws2 = g.mapping(z1), g.mapping(z2)
        base = g.synthesis(ws1, "const")
        fine_k = g.num_ws - 2  # the last 32x32 conv and the toRGB take the second w
        fine = g(z1, z2=z2, mix_layer=fine_k, noise_mode="const")
        assert torch.allclose(fine, g.synthesis(mix_ws(ws1, ws2, fine_k), "const"))
        coarse = g.synthesis(mix_ws(ws1, ws2, 1), "const")
        # the coarse path (the image up to 16x16) is untouched by the switched styles
        fine_ws = mix_ws(ws1, ws2, fine_k)
        assert torch.equal(g.synthesis(fine_ws, "const", 16), g.synthesis(ws1, "const", 16))
        # ws[:, num_ws - 3] drives the first 32x32 conv and the 16x16 toRGB
        mixed_16 = mix_ws(ws1, ws2, g.num_ws - 3)
        assert not torch.equal(g.synthesis(mixed_16, "const", 16), g.synthesis(ws1, "const", 16))
    assert (fine - base).abs().max() > 1e-3
    # Low-passed (8x8 block means), the image keeps the first w's layout when only fine layers
    # switch, and loses it when all but the first switch. Energy alone would not show this: the
    # fine styles also shift colours (low frequencies), in trained StyleGANs too.
    assert low_pass_correlation(fine, base) > 0.8
    assert low_pass_correlation(coarse, base) < low_pass_correlation(fine, base) - 0.2


def test_fixed_noise_is_deterministic_and_fine_noise_changes_fine_detail() -> None:
    g = tiny_g(32)
    set_noise_strength(g, 0.5)
    z = torch.randn(4, 16)
    with torch.no_grad():
        ws = g.mapping(z)
        a, b = g.synthesis(ws, "const"), g.synthesis(ws, "const")
        assert torch.equal(a, b)
        assert not torch.allclose(g.synthesis(ws, "random"), g.synthesis(ws, "random"))
        for conv in g.synthesis_net.blocks[-1].convs:  # new noise at 32x32 only
            conv.noise_const.normal_()
        c = g.synthesis(ws, "const")
        set_noise_strength(g, 0.0)
        assert torch.equal(g.synthesis(ws, "none"), g.synthesis(ws, "random"))
    diff = c - a
    assert diff.abs().max() > 1e-3
    assert low_pass_fraction(diff) < 0.25  # mostly high frequencies...
    assert low_pass_fraction(a - a.mean()) > 0.5  # ...unlike the image itself


def test_progressive_fade_ends_at_lower_and_higher_paths() -> None:
    g = tiny_g(32)
    ws = g.mapping(torch.randn(2, 16))
    with torch.no_grad():
        low = g.synthesis(ws, "const", resolution=8)
        high = g.synthesis(ws, "const", resolution=16)
        fade0 = g.synthesis(ws, "const", resolution=16, alpha=0.0)
        fade1 = g.synthesis(ws, "const", resolution=16, alpha=1.0)
        half = g.synthesis(ws, "const", resolution=16, alpha=0.5)
    up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    assert low.shape[-1] == 8 and high.shape[-1] == 16
    assert torch.allclose(fade0, up, atol=1e-6)
    assert torch.equal(fade1, high)
    assert torch.allclose(half, (up + high) / 2, atol=1e-5)

    d = StyleDiscriminator(32, channel_base=256, channel_max=16, progressive=True)
    img = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(
            d(img, resolution=16, alpha=0.0), d(F.avg_pool2d(img, 2), resolution=8), atol=1e-6
        )
        assert torch.equal(d(img, resolution=16, alpha=1.0), d(img, resolution=16))
        assert d(torch.randn(4, 3, 32, 32)).shape == (4, 1)
    with pytest.raises(ValueError, match="no fromRGB"):
        StyleDiscriminator(32, channel_base=256, channel_max=16)(img, resolution=16)


# ---------------------------------------------------------------- discriminator


def test_minibatch_stddev_appends_the_group_std() -> None:
    x = torch.randn(8, 6, 4, 4)
    out = minibatch_stddev(x, group=4, features=1)
    assert out.shape == (8, 7, 4, 4)
    # samples i and i + 2, i + 4, i + 6 form a group (group index = i % 2)
    for m in range(2):
        group = x[m::2]  # (4, 6, 4, 4)
        expected = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
        assert torch.allclose(out[m::2, 6], expected.expand(4, 4, 4), atol=1e-6)
    same = minibatch_stddev(x[:1].repeat(4, 1, 1, 1))
    assert same[:, -1].max() < 1e-3  # no variety, no signal
    assert minibatch_stddev(torch.randn(6, 6, 4, 4)).shape == (6, 7, 4, 4)  # groups of 3


def test_discriminator_is_residual_and_shaped() -> None:
    d = StyleDiscriminator(16, img_channels=1, channel_base=128, channel_max=16)
    assert [int(k) for k in d.blocks] == [16, 8]
    assert d(torch.randn(3, 1, 16, 16)).shape == (3, 1)
    with pytest.raises(ValueError, match="16x16"):
        d(torch.randn(3, 1, 8, 8))
