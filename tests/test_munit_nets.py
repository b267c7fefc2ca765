"""MUNIT networks, the segmentation net and the MUNIT losses.

Parameter counts of the published defaults for 3-channel images (dim 64, style 8, 2 downsamplings,
4 residual blocks, MLP 3 x 256), checked layer by layer against the published layout:

- content encoder 5,385,856: 7x7 3->64 (9,472), 4x4 64->128 (131,200), 4x4 128->256 (524,544),
  4 residual blocks of two 3x3 256->256 convs (8 x 590,080 = 4,720,640);
- style encoder 2,764,936: 7x7 (9,472), 4x4 to 128 (131,200), to 256 (524,544), two 4x4
  256->256 (2 x 1,048,832), 1x1 256->8 (2,056);
- decoder 5,754,627: the residual convs again (4,720,640; AdaIN has no weights of its own),
  5x5 256->128 (819,328) + layer norm (256), 5x5 128->64 (204,864) + layer norm (128),
  7x7 64->3 (9,411);
- style MLP 1,120,768: 8->256 (2,304), 256->256 (65,792), 256->4096 (1,052,672), where
  4096 = 4 blocks x 2 AdaIN x (scale + shift) x 256 channels;
- one generator: 15,026,187 (the "~15.0M" of the published model; MUNIT trains two).
- multi-scale discriminator 8,271,171 = 3 scales x 2,757,057: 4x4 3->64 (3,136), 64->128
  (131,200), 128->256 (524,544), 256->512 (2,097,664), 1x1 512->1 (513).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixmorph.losses.munit import masked_l1, ms_d_loss, ms_g_loss, semantic_consistency
from pixmorph.nets.blocks import init_weights
from pixmorph.nets.munit import (
    ContentClassifier,
    LayerNorm,
    MultiScaleDiscriminator,
    MUNITGenerator,
    init_kaiming,
)
from pixmorph.nets.segnet import SegNet


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def tiny_g(**kw: int) -> MUNITGenerator:
    return MUNITGenerator(3, 3, dim=8, style_dim=4, n_res=2, mlp_dim=16, **kw)


def test_published_generator_parameter_count():
    g = MUNITGenerator(3, 3)
    assert count(g.enc_content) == 5_385_856
    assert count(g.enc_style) == 2_764_936
    assert count(g.dec) == 5_754_627
    assert count(g.mlp) == 1_120_768
    assert g.dec.n_adain_params == 4 * 2 * 2 * 256
    assert count(g) == 15_026_187


def test_published_discriminator_parameter_count():
    d = MultiScaleDiscriminator(3)
    assert len(d.nets) == 3
    assert count(d) == 3 * 2_757_057 == 8_271_171
    assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in d.modules())


@pytest.mark.parametrize("size", [16, 32, 48])
def test_generator_shapes(size: int):
    g = tiny_g()
    x = torch.randn(2, 3, size, size)
    content, style = g.encode(x)
    assert content.shape == (2, 32, size // 4, size // 4)
    assert style.shape == (2, 4)
    y = g.decode(content, style)
    assert y.shape == x.shape and y.abs().max() <= 1.0
    assert g(x, g.random_style(2)).shape == x.shape


def test_non_square_and_other_depths():
    g = tiny_g(n_down=3)
    x = torch.randn(1, 3, 32, 48)
    assert g.encode(x)[0].shape == (1, 64, 4, 6)
    assert g(x, torch.randn(1, 4)).shape == x.shape


def test_style_code_changes_the_output_and_content_is_style_free():
    torch.manual_seed(0)
    g = init_kaiming(tiny_g()).eval()
    x = torch.randn(1, 3, 32, 32)
    content = g.enc_content(x)
    s1, s2 = torch.randn(2, 1, 4)
    y1, y2 = g.decode(content, s1), g.decode(content, s2)
    assert (y1 - y2).abs().mean() > 1e-2
    assert torch.equal(g.decode(content, s1), y1)  # deterministic for one style
    # the content code does not see the style input at all: no gradient reaches the style
    s = s1.clone().requires_grad_(True)
    g.enc_content(x).sum().backward()
    assert s.grad is None


def test_layer_norm_is_per_sample_over_chw():
    ln = LayerNorm(4)
    nn.init.ones_(ln.gamma)
    x = torch.randn(3, 4, 5, 5) * torch.tensor([1.0, 10.0, 100.0]).view(3, 1, 1, 1) + 7
    y = ln(x)
    assert torch.allclose(y.flatten(1).mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.flatten(1).std(1), torch.ones(3), atol=1e-3)
    # channels keep their relative offsets (it is not instance norm)
    assert not torch.allclose(y.mean((2, 3)), torch.zeros(3, 4), atol=1e-2)


def test_multiscale_discriminator_scales_and_pooling():
    d = MultiScaleDiscriminator(3, dim=8, n_layers=4, num_scales=3)
    outs = d(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outs] == [(2, 1, 4, 4), (2, 1, 2, 2), (2, 1, 1, 1)]
    # count_include_pad=False: a constant image stays constant at the border after pooling
    assert torch.allclose(d.pool(torch.ones(1, 1, 8, 8)), torch.ones(1, 1, 4, 4))


def test_inits():
    g = init_kaiming(MUNITGenerator(3, 3, dim=16, mlp_dim=32))
    w = g.enc_content.model[5].weight  # the 4x4 16->32 conv: fan-in 256
    assert w.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.1)
    d = init_weights(MultiScaleDiscriminator(3, dim=16), 0.02)
    w = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.05)


def test_content_classifier_any_size_and_learns():
    clf = ContentClassifier(in_ch=32, width=8)
    assert clf(torch.randn(3, 32, 4, 4)).shape == (3,)
    assert clf(torch.randn(2, 32, 8, 12)).shape == (2,)
    # two separable content distributions: a few steps lower the loss
    torch.manual_seed(0)
    sim, real = torch.randn(8, 32, 4, 4) + 1.0, torch.randn(8, 32, 4, 4) - 1.0
    target = torch.cat([torch.zeros(8), torch.ones(8)])
    opt = torch.optim.Adam(clf.parameters(), 1e-2)
    losses = []
    for _ in range(20):
        loss = nn.functional.binary_cross_entropy_with_logits(clf(torch.cat([sim, real])), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("size,depth", [(16, 3), (32, 3), (24, 2)])
def test_segnet_shapes(size: int, depth: int):
    net = SegNet(3, 6, width=8, depth=depth)
    assert net(torch.randn(2, 3, size, size + 8)).shape == (2, 6, size, size + 8)


def test_segnet_rejects_sizes_it_cannot_pool():
    with pytest.raises(ValueError, match="multiples of 8"):
        SegNet(3, 6, width=8, depth=3)(torch.randn(1, 3, 20, 16))


def test_masked_l1_ignores_masked_pixels_exactly():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    y = torch.randn(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 3:6] = 1.0
    loss = masked_l1(x, y, mask)
    loss.backward()
    assert torch.all(x.grad[:, :, 2:5, 3:6] == 0)
    assert torch.all(x.grad[:, :, 0, 0] != 0)
    # changing a masked pixel does not change the loss; changing a kept one does
    x2 = x.detach().clone()
    x2[:, :, 3, 4] += 5.0
    assert masked_l1(x2, y, mask).item() == pytest.approx(loss.item())
    x2[:, :, 0, 0] += 5.0
    assert masked_l1(x2, y, mask).item() > loss.item()
    assert masked_l1(y, y, torch.zeros_like(mask)).item() == 0.0


def _logits(labels: torch.Tensor, k: int = 4, margin: float = 3.0) -> torch.Tensor:
    """Logits (B, K, H, W) peaked at `labels` (B, H, W)."""
    return nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).float() * margin


def test_semantic_consistency_zero_for_identical_and_grows_with_changes():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (2, 8, 8))
    source = _logits(labels) + 0.1 * torch.randn(2, 4, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    assert semantic_consistency(source, source, mask).item() == pytest.approx(0.0, abs=1e-6)
    losses = []
    for changed in (4, 16, 32):
        flipped = labels.clone().flatten(1)
        flipped[:, :changed] = (flipped[:, :changed] + 1) % 4
        losses.append(semantic_consistency(_logits(flipped.view(2, 8, 8)), source, mask).item())
    assert 0 < losses[0] < losses[1] < losses[2]


def test_semantic_consistency_ignores_pixels_inside_the_mask():
    torch.manual_seed(1)
    labels = torch.randint(0, 4, (1, 8, 8))
    source = _logits(labels)
    fake = source.clone().requires_grad_(True)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1.0
    changed = labels.clone()
    changed[:, :4] = (changed[:, :4] + 2) % 4  # changes only inside the mask
    assert semantic_consistency(_logits(changed), source, mask).item() == pytest.approx(0.0)
    semantic_consistency(fake, source, mask).backward()
    assert torch.all(fake.grad[..., :4, :] == 0) and fake.grad[..., 4:, :].abs().sum() > 0
    full = torch.ones_like(mask)
    assert semantic_consistency(fake, source, full).item() == 0.0


def test_multiscale_lsgan_losses():
    ones = [torch.ones(2, 1, 4, 4), torch.ones(2, 1, 2, 2)]
    zeros = [torch.zeros_like(t) for t in ones]
    assert ms_d_loss(ones, zeros).item() == 0.0  # perfect discriminator
    assert ms_d_loss(zeros, ones).item() == pytest.approx(4.0)  # 2 scales x (1 + 1)
    assert ms_g_loss(ones).item() == 0.0
    assert ms_g_loss(zeros).item() == pytest.approx(2.0)
    half = [torch.full_like(t, 0.5) for t in ones]
    assert ms_g_loss(half).item() == pytest.approx(0.5)
