"""PatchNCE parts of CUT: encoder taps, shared patch positions, the contrastive loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pixmorph.errors import ConfigError
from pixmorph.nets.patchnce import (
    NCE_LAYERS,
    PatchSampleMLP,
    encoder_features,
    forward_with_features,
    patch_nce,
    patch_nce_loss,
    tap_channels,
)
from pixmorph.nets.resnet import ResNetGenerator
from pixmorph.nets.unet import UNet


def tiny_gen(norm: str = "instance", n_blocks: int = 9) -> ResNetGenerator:
    torch.manual_seed(0)
    return ResNetGenerator(3, 3, ngf=8, n_blocks=n_blocks, norm=norm)


def unit(*shape: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape), dim=-1)


# --- the loss ---------------------------------------------------------------------------------
def test_loss_equals_a_hand_computed_value():
    q = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])  # (B=1, P=2, D=2)
    k = torch.tensor([[[0.8, 0.6], [0.0, 1.0]]])
    t = 0.5
    # query 0: positive q0.k0 = 0.8, negative q0.k1 = 0; query 1: positive 0.8, negative 0.96
    ce0 = -0.8 / t + math.log(math.exp(0.8 / t) + math.exp(0.0 / t))
    ce1 = -0.8 / t + math.log(math.exp(0.8 / t) + math.exp(0.96 / t))
    got = patch_nce_loss(q, k, temperature=t)
    assert got.item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)


def test_negatives_come_from_the_same_image_only():
    torch.manual_seed(1)
    q, k = unit(2, 5, 4), unit(2, 5, 4)
    both = patch_nce_loss(q, k)
    # two images in one batch give the mean of the two images alone: no cross-image negatives
    each = (patch_nce_loss(q[:1], k[:1]) + patch_nce_loss(q[1:], k[1:])) / 2
    assert both.item() == pytest.approx(each.item(), rel=1e-6)


def test_identical_features_give_a_lower_loss_than_shuffled():
    torch.manual_seed(2)
    q = unit(2, 64, 16)
    shuffled = q[:, torch.randperm(64)]
    assert patch_nce_loss(q, q.clone()).item() < patch_nce_loss(q, shuffled).item() - 1.0


def test_key_gets_no_gradient_and_query_does():
    q = unit(1, 6, 8).requires_grad_(True)
    k = unit(1, 6, 8).requires_grad_(True)
    patch_nce_loss(q, k).backward()
    assert k.grad is None
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        patch_nce_loss(unit(1, 4, 8), unit(1, 5, 8))


# --- the taps ---------------------------------------------------------------------------------
def test_taps_are_the_published_layers_on_pixmorphs_modules():
    gen = tiny_gen()
    x = torch.randn(2, 3, 32, 32)
    caught = []
    modules = [gen.stem[0], gen.down[0], gen.down[3], gen.blocks[0], gen.blocks[4]]
    hooks = [m.register_forward_hook(lambda _m, _i, o: caught.append(o.clone())) for m in modules]
    with torch.no_grad():
        out = gen(x)
        feats = encoder_features(gen, x)
        out2, feats2 = forward_with_features(gen, x)
    for h in hooks:
        h.remove()
    caught = caught[:5]  # the hooks fired again during the tap calls; the first five are gen(x)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (3, 38, 38),  # padded input
        (16, 16, 16),  # first downsampling conv
        (32, 8, 8),  # second downsampling conv
        (32, 8, 8),  # residual block 1
        (32, 8, 8),  # residual block 5
    ]
    for f, f2, c in zip(feats, feats2, caught, strict=True):
        torch.testing.assert_close(f, c)
        torch.testing.assert_close(f2, c)
    torch.testing.assert_close(out2, out)
    assert tap_channels(gen) == [3, 16, 32, 32, 32]


def test_tap_channels_leaves_batch_norm_stats_and_mode_alone():
    gen = tiny_gen(norm="batch")
    before = gen.down[1].running_mean.clone()
    assert gen.training
    tap_channels(gen)
    assert gen.training
    torch.testing.assert_close(gen.down[1].running_mean, before)


def test_taps_that_do_not_exist_are_clear_errors():
    with pytest.raises(ConfigError, match="n_blocks > k"):
        encoder_features(tiny_gen(n_blocks=3), torch.randn(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="resnet_9blocks"):
        tap_channels(UNet(3, 3, ngf=8, depth=4))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="forward order"):
        encoder_features(tiny_gen(), torch.randn(1, 3, 16, 16), ("down.0", "stem.0"))


# --- sampling ---------------------------------------------------------------------------------
def test_query_is_sampled_at_the_key_positions():
    torch.manual_seed(3)
    heads = PatchSampleMLP([4, 6], n_units=8)
    key_feats = [torch.randn(2, 4, 6, 5), torch.randn(2, 6, 3, 3)]
    query_feats = [torch.randn(2, 4, 6, 5), torch.randn(2, 6, 3, 3)]
    key, ids = heads(key_feats, n_patches=12, generator=torch.Generator().manual_seed(0))
    query, ids_q = heads(query_feats, ids=ids)
    assert [len(i) for i in ids] == [12, 9]  # the 3x3 map has only 9 positions: all of them
    assert all(torch.equal(a, b) for a, b in zip(ids, ids_q, strict=True))
    assert key[0].shape == query[0].shape == (2, 12, 8)
    # each query row is the head applied at the position the key row came from
    w = 5
    for j, flat in enumerate(ids[0].tolist()):
        h_, w_ = divmod(flat, w)
        expect = F.normalize(heads.heads[0](query_feats[0][:, :, h_, w_]), dim=-1)
        torch.testing.assert_close(query[0][:, j], expect)
    assert torch.allclose(key[1].norm(dim=-1), torch.ones(2, 9))


def test_the_same_seed_draws_the_same_positions():
    heads = PatchSampleMLP([4], n_units=8)
    feats = [torch.randn(1, 4, 16, 16)]

    def draw(seed: int) -> torch.Tensor:
        return heads(feats, n_patches=32, generator=torch.Generator().manual_seed(seed))[1][0]

    assert torch.equal(draw(5), draw(5))  # every rank seeded alike samples alike
    assert not torch.equal(draw(5), draw(6))
    assert len(set(draw(5).tolist())) == 32  # without replacement


def test_heads_exist_before_any_forward_and_are_trained_through_the_query():
    gen = tiny_gen()
    heads = PatchSampleMLP(tap_channels(gen), n_units=16)
    names = {n for n, _ in heads.named_parameters()}
    assert {"heads.0.0.weight", "heads.4.2.bias"} <= names and len(names) == 4 * len(NCE_LAYERS)
    x = torch.randn(1, 3, 16, 16)
    fake = gen(x)
    g = torch.Generator().manual_seed(0)
    loss = patch_nce(gen, heads, x, fake, n_patches=16, generator=g)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads.parameters())
    assert gen.head[1].weight.grad.abs().sum() > 0  # through the output, into the decoder


def test_patch_nce_is_the_layer_mean_of_the_loss_at_shared_positions():
    gen = tiny_gen()
    heads = PatchSampleMLP(tap_channels(gen), n_units=16)
    x, y = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        got = patch_nce(gen, heads, x, y, n_patches=10, generator=torch.Generator().manual_seed(4))
        key, ids = heads(encoder_features(gen, x), 10, generator=torch.Generator().manual_seed(4))
        query, _ = heads(encoder_features(gen, y), ids=ids)
        by_layer = [patch_nce_loss(q, k) for q, k in zip(query, key, strict=True)]
        assert got.item() == pytest.approx(sum(by_layer).item() / len(by_layer), rel=1e-5)
        # an output that keeps the input's content scores better than an unrelated one
        same = patch_nce(gen, heads, x, x, n_patches=10, generator=torch.Generator().manual_seed(4))
        assert same.item() < got.item()


def test_flipped_output_is_matched_after_flipping_its_features_back():
    gen = tiny_gen()
    heads = PatchSampleMLP(tap_channels(gen), n_units=16)
    x = torch.randn(1, 3, 16, 16)
    g = torch.Generator
    with torch.no_grad():
        # features of the flipped input, flipped back, are compared with the unflipped features
        flipped_back = [f.flip(-1) for f in encoder_features(gen, x.flip(-1))]
        key, ids = heads(encoder_features(gen, x), 12, generator=g().manual_seed(1))
        query, _ = heads(flipped_back, ids=ids)
        expect = torch.stack([patch_nce_loss(q, k) for q, k in zip(query, key, strict=True)])
        got = patch_nce(
            gen, heads, x, x.flip(-1), n_patches=12, generator=g().manual_seed(1), flipped=True
        )
        unflipped = patch_nce(gen, heads, x, x.flip(-1), n_patches=12, generator=g().manual_seed(1))
    assert got.item() == pytest.approx(expect.mean().item(), rel=1e-5)
    assert got.item() != pytest.approx(unflipped.item(), rel=1e-3)
