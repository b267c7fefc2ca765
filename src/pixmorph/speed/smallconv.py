"""Convolutions on small feature maps as one matrix product (a speed setting, same results).

A U-Net's inner layers hold most of its weights (unet_256: 45 of 54 M parameters sit at 16x16
and below) but do little arithmetic: 512-1024 channels over 1-64 pixels. There the library
convolution spends its time re-laying out the weight on every call (a transposed convolution
1024->512 at 2x2 takes ~20 ms for 67 MFLOP on the benchmark CPU). Written as unfold + matmul
(convolution) or matmul + fold (transposed convolution), the weight is read once, in place, by
a plain matrix product: 2-5x faster on those layers, forward and backward, fp32 and bf16.

`SmallMapConv2d` and `SmallMapConvTranspose2d` are nn.Conv2d / nn.ConvTranspose2d with that
forward when the product's small side (output pixels of a convolution, input pixels of a
transposed one) has at most `SMALL_MAP_PIXELS` pixels, and the library path otherwise. Layers
with very few outputs per pixel (`FEW_OUTPUTS`: an RGB output layer, a PatchGAN's last layer)
take a matmul path at any size. They add no state: parameters, buffers and state_dict keys are
those of the torch modules, so checkpoints do not change. tests/test_smallconv.py checks values and gradients against torch.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# Largest map (pixels per image on the matrix product's narrow side) that takes the matmul
# path. Measured on the benchmark CPU: matmul wins clearly up to 8x8 and loses from 16x16 on
# for 256-1024 channels (benchmarks/train_speed.py and translate_speed.py show the effect).
SMALL_MAP_PIXELS = 64
# A (transposed) convolution writing at most this many values per input pixel (out_channels x
# kernel area) also takes a matmul path, whatever its size: a U-Net's RGB output layer (3 x 4 x
# 4, 2x faster) and a PatchGAN's last layer (1 x 4 x 4, 3-4x). Measured slower from ~150 on
# (a ResNet's 7x7 RGB layer, 147: there the library kernel is faster than the fold).
FEW_OUTPUTS = 48


def _plain(m: nn.Module) -> bool:
    """Whether a conv module has no groups, dilation or padding mode the matmul path lacks."""
    return (
        m.groups == 1
        and all(d == 1 for d in m.dilation)
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


def conv2d_matmul(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding) -> Tensor:
    """F.conv2d (groups 1, dilation 1) as unfold + matmul."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = (h + 2 * padding[0] - kh) // stride[0] + 1
    w_out = (w + 2 * padding[1] - kw) // stride[1] + 1
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # n, c_in*kh*kw, L
    out = weight.reshape(c_out, -1) @ cols  # n, c_out, L
    if bias is not None:
        out = out + bias.to(out.dtype)[:, None]
    return out.reshape(n, c_out, h_out, w_out)


def conv_transpose2d_matmul(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, output_padding
) -> Tensor:
    """F.conv_transpose2d (groups 1, dilation 1) as matmul + fold."""
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    h_out = (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
    w_out = (w - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    # (n, L, c_in) @ (c_in, c_out*kh*kw): the weight is read in its stored layout
    cols = x.reshape(n, c_in, h * w).transpose(1, 2) @ weight.reshape(c_in, -1)
    out = F.fold(cols.transpose(1, 2), (h_out, w_out), (kh, kw), padding=padding, stride=stride)
    if bias is not None:
        out = out + bias.to(out.dtype)[:, None, None]
    return out


def conv2d_few_outputs(x: Tensor, weight: Tensor, bias: Tensor | None, padding) -> Tensor:
    """F.conv2d (stride 1, groups 1, dilation 1) as matmul + fold, for few output channels.

    Every input pixel's contribution to each output channel and tap is one small matmul
    (c_out*kh*kw rows); fold then adds the taps at their offsets, the kernel flipped so that
    fold's placement gives a correlation. No unfolded input (c_in*kh*kw rows per pixel) is made.
    """
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out, w_out = h + 2 * padding[0] - kh + 1, w + 2 * padding[1] - kw + 1
    taps = weight.flip(2, 3).permute(0, 2, 3, 1).reshape(c_out * kh * kw, c_in)
    cols = taps @ x.reshape(n, c_in, h * w)  # n, c_out*kh*kw, h*w
    pad = (kh - 1 - padding[0], kw - 1 - padding[1])
    out = F.fold(cols, (h_out, w_out), (kh, kw), padding=pad)
    if bias is not None:
        out = out + bias.to(out.dtype)[:, None, None]
    return out


class SmallMapConv2d(nn.Conv2d):
    """nn.Conv2d computed by one matmul when its output map is small (see module docs)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and _plain(self):
            kh, kw = self.kernel_size
            h = (x.shape[2] + 2 * self.padding[0] - kh) // self.stride[0] + 1
            w = (x.shape[3] + 2 * self.padding[1] - kw) // self.stride[1] + 1
            if h * w <= SMALL_MAP_PIXELS:
                return conv2d_matmul(x, self.weight, self.bias, self.stride, self.padding)
            if (
                self.out_channels * kh * kw <= FEW_OUTPUTS
                and self.stride == (1, 1)
                and self.padding[0] < kh
                and self.padding[1] < kw
            ):
                return conv2d_few_outputs(x, self.weight, self.bias, self.padding)
        return super().forward(x)


class SmallMapConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d computed by matmul + fold when its input map is small."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is None and x.dim() == 4 and _plain(self) and self._small(x):
            return conv_transpose2d_matmul(
                x, self.weight, self.bias, self.stride, self.padding, self.output_padding
            )
        return super().forward(x, output_size)

    def _small(self, x: Tensor) -> bool:
        """A small input map, or so few output values per input pixel (an RGB output layer)
        that the library's kernel runs far below its speed (128->3 at 128x128: 2x slower)."""
        per_pixel = self.out_channels * self.kernel_size[0] * self.kernel_size[1]
        return x.shape[2] * x.shape[3] <= SMALL_MAP_PIXELS or per_pixel <= FEW_OUTPUTS


SMALL_MAP_CONVS = (SmallMapConv2d, SmallMapConvTranspose2d)
_SWAPS: dict[type, type] = {
    nn.Conv2d: SmallMapConv2d,
    nn.ConvTranspose2d: SmallMapConvTranspose2d,
}


def use_matmul_for_small_maps(net: nn.Module) -> int:
    """Give every plain Conv2d/ConvTranspose2d of `net` the small-map path; returns how many.

    The classes are swapped in place (subclasses adding no state), so parameters, optimizer
    references and state_dict keys stay the same. `restore_torch_convs` undoes it.
    """
    n = 0
    for m in net.modules():
        swap = _SWAPS.get(type(m))
        if swap is not None:
            m.__class__ = swap
            n += 1
    return n


def restore_torch_convs(net: nn.Module) -> nn.Module:
    """Give the swapped modules of `net` back their torch classes; returns net."""
    back = {v: k for k, v in _SWAPS.items()}
    for m in net.modules():
        if type(m) in back:
            m.__class__ = back[type(m)]
    return net
