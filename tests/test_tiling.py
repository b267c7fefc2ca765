"""Tests for tiled translation: exactness for local functions, seamless blending, edge cases."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.inference.tiling import tile_starts, translate_tiled
from pixmorph.nets.srresnet import SRResNet

SIZES = [(37, 29), (16, 50), (45, 17), (64, 64), (33, 65)]


@pytest.mark.parametrize("size", [17, 37, 64, 100, 101])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 0), (16, 6), (16, 15), (10, 3)])
def test_tile_starts_cover_the_axis_with_enough_overlap(size: int, tile: int, overlap: int) -> None:
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] == size - tile
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(1 <= g <= tile - overlap for g in gaps)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scale", [1, 3])
def test_constant_function_gives_constant_image(size: tuple[int, int], scale: int) -> None:
    # The blend weights must sum to 1 at every output pixel, or seams would show here.
    def const(t: Tensor) -> Tensor:
        b, _, h, w = t.shape
        return torch.full((b, 2, h * scale, w * scale), 0.7)

    out = translate_tiled(const, torch.zeros(2, 3, *size), tile=16, overlap=6, scale=scale)
    assert out.shape == (2, 2, size[0] * scale, size[1] * scale)
    torch.testing.assert_close(out, torch.full_like(out, 0.7), atol=1e-6, rtol=0)


def _local_fns() -> dict[str, tuple[nn.Module, int]]:
    """Per-pixel functions (receptive-field radius 0) with their scale."""
    torch.manual_seed(0)
    return {
        "conv1x1": (nn.Conv2d(3, 5, 1), 1),
        "pixel_shuffle": (nn.Sequential(nn.Conv2d(3, 8, 1), nn.PixelShuffle(2)), 2),
        "nearest_x3": (nn.Upsample(scale_factor=3, mode="nearest"), 3),
    }


@pytest.mark.parametrize("name", list(_local_fns()))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("overlap", [0, 5])
def test_per_pixel_functions_tile_exactly(name: str, size: tuple[int, int], overlap: int) -> None:
    fn, scale = _local_fns()[name]
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ref = fn(x)
    out = translate_tiled(fn, x, tile=16, overlap=overlap, scale=scale)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def _conv_net(radius: int) -> nn.Module:
    """A random zero-padded conv net whose outputs see `radius` input pixels each way."""
    torch.manual_seed(1)
    layers: list[nn.Module] = [nn.Conv2d(3, 6, 3, padding=1)]
    for _ in range(radius - 1):
        layers += [nn.Tanh(), nn.Conv2d(6, 6, 3, padding=1)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("size", SIZES)
def test_conv_net_tiles_exactly_when_overlap_covers_four_radii(size: tuple[int, int]) -> None:
    # Zero padding at a cut edge differs from the true neighbours, but the blend gives 0 weight to
    # the outputs within overlap // 4 px of a cut, so radius <= overlap // 4 is exact everywhere.
    net = _conv_net(radius=2)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        ref = net(x)
    out = translate_tiled(net, x, tile=20, overlap=8, scale=1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_conv_net_is_not_exact_when_overlap_is_too_small() -> None:
    # The converse, so the test above is not passing by accident: overlap // 4 = 1 < radius 2.
    net = _conv_net(radius=2)
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        ref = net(x)
    assert (translate_tiled(net, x, tile=20, overlap=7) - ref).abs().max() > 1e-4


def _receptive_radius(net: nn.Module, scale: int, size: int = 41) -> int:
    """Measured radius in input pixels: how far input gradients reach from one output pixel."""
    x = torch.randn(1, 3, size, size, requires_grad=True)
    centre = size // 2
    net(x)[0, :, centre * scale, centre * scale].sum().backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()  # (n, 1) input rows that matter
    return max(centre - int(rows.min()), int(rows.max()) - centre)


def test_srresnet_tiles_exactly_with_overlap_four_radii_and_closely_with_one() -> None:
    torch.manual_seed(2)
    net = SRResNet(scale=2, n_feats=8, n_blocks=2).eval()
    radius = _receptive_radius(net, scale=2)
    # 9x9 head (4) + 2 blocks of two 3x3 convs (4) + trunk conv (1) + up conv (1)
    # + 9x9 tail at twice the resolution (4 HR px = 2 LR px).
    assert radius == 12
    x = torch.rand(1, 3, 100, 90) * 2 - 1
    with torch.no_grad():
        ref = net(x)  # (1, 3, 200, 180)

    exact = translate_tiled(net, x, tile=64, overlap=4 * radius, scale=2)
    torch.testing.assert_close(exact, ref, atol=1e-5, rtol=0)

    # With overlap = radius, outputs near the cuts that still get weight see zero padding instead
    # of neighbours. Measured over seeds 2-5: mean |err| ~ 0.008 std(ref), max 0.31-0.36 std(ref);
    # the bounds leave about a 2x margin.
    close = translate_tiled(net, x, tile=64, overlap=radius, scale=2)
    err = (close - ref).abs()
    assert err.mean() < 0.02 * ref.std()
    assert err.max() < 0.8 * ref.std()


@pytest.mark.parametrize("size", [(16, 16), (9, 13), (1, 1)])
def test_image_within_one_tile_is_one_call(size: tuple[int, int]) -> None:
    calls = []

    def up2(t: Tensor) -> Tensor:
        calls.append(tuple(t.shape))
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    x = torch.randn(2, 3, *size)
    out = translate_tiled(up2, x, tile=16, overlap=4, scale=2)
    assert calls == [(2, 3, *size)]
    torch.testing.assert_close(out, up2(x), atol=0, rtol=0)


def test_tiles_are_clamped_inside_the_image() -> None:
    seen = []

    def record(t: Tensor) -> Tensor:
        seen.append(tuple(t.shape[-2:]))
        return t

    translate_tiled(record, torch.randn(1, 1, 45, 10), tile=16, overlap=4)
    assert set(seen) == {(16, 10)}  # full-height tiles; the short axis is taken whole


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tile": 0, "overlap": 0}, "tile must be an int >= 1"),
        ({"tile": 16.0, "overlap": 4}, "tile must be an int"),
        ({"tile": True, "overlap": 0}, "tile must be an int"),
        ({"tile": 16, "overlap": -1}, "overlap must be an int >= 0"),
        ({"tile": 16, "overlap": 16}, r"overlap \(16\) must be smaller than tile \(16\)"),
        ({"tile": 16, "overlap": 4, "scale": 0}, "scale must be an int >= 1"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        translate_tiled(lambda t: t, torch.zeros(1, 3, 32, 32), **kwargs)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        translate_tiled(lambda t: t, torch.zeros(3, 32, 32), tile=16, overlap=4)
    with pytest.raises(ValueError, match="is scale=1 right"):
        translate_tiled(lambda t: t.repeat(1, 1, 2, 2), torch.zeros(1, 3, 40, 40), 16, 4)
