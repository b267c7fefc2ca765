"""MUNIT generator: a content encoder, a style encoder, and a decoder driven by AdaIN.

An image splits into a content code (a spatial map shared across domains) and a style code
(a small vector per domain). The decoder renders a content code in a style: an MLP turns the
style code into the scale and shift of every adaptive instance norm (AdaIN) in its residual
blocks. Defaults are the published ones (dim 64, style 8, 2 downsamplings, 4 residual blocks,
MLP of 3 layers with 256 units); all padding is reflection padding, all activations ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-5


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """Reflection padding then a conv with bias: same size at stride 1, halved at stride 2."""
    pad = (kernel - stride) // 2 if stride > 1 else kernel // 2  # 4x4 stride 2 pads by 1
    return [nn.ReflectionPad2d(pad), nn.Conv2d(in_ch, out_ch, kernel, stride)]


def _instance_norm(channels: int) -> nn.Module:
    # Plain instance norm, no affine and no running statistics, as in the published encoders.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class LayerNorm(nn.Module):
    """Per-sample normalisation over (C, H, W) with a per-channel scale and shift."""

    def __init__(self, channels: int, eps: float = EPS) -> None:
        super().__init__()
        self.eps = eps
        # The published decoder starts its scales from U(0, 1), not from ones.
        self.gamma = nn.Parameter(torch.rand(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)  # (B, C*H*W)
        shape = (-1,) + (1,) * (x.dim() - 1)
        mean = flat.mean(1).view(shape)
        std = flat.std(1).view(shape)  # divides by std + eps (not sqrt(var + eps)), as published
        x = (x - mean) / (std + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def adain(x: Tensor, scale: Tensor, shift: Tensor, eps: float = EPS) -> Tensor:
    """Instance-normalise `x` (B, C, H, W), then apply per-sample `scale`, `shift` (B, C)."""
    x = F.instance_norm(x, eps=eps)
    return x * scale[:, :, None, None] + shift[:, :, None, None]


class ResBlock(nn.Module):
    """Two reflection-padded 3x3 convs with instance norm and a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv(channels, channels, 3),
            _instance_norm(channels),
            nn.ReLU(inplace=True),
            *_conv(channels, channels, 3),
            _instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class AdaINResBlock(nn.Module):
    """A residual block whose two norms are AdaIN with scales and shifts given per call."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Sequential(*_conv(channels, channels, 3))
        self.conv2 = nn.Sequential(*_conv(channels, channels, 3))

    @property
    def n_params(self) -> int:
        """Numbers it takes from the style MLP: (shift, scale) for each of its two norms."""
        return 4 * self.channels

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        # params (B, 4C): [shift1, scale1, shift2, scale2], the published mean-then-std order
        shift1, scale1, shift2, scale2 = params.chunk(4, dim=1)
        h = F.relu(adain(self.conv1(x), scale1, shift1))
        h = adain(self.conv2(h), scale2, shift2)
        return x + h


class ContentEncoder(nn.Module):
    """7x7 conv, `n_down` stride-2 4x4 convs doubling the width, `n_res` residual blocks."""

    def __init__(self, in_ch: int = 3, dim: int = 64, n_down: int = 2, n_res: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv(in_ch, dim, 7), _instance_norm(dim), nn.ReLU(True)]
        for _ in range(n_down):
            layers += [*_conv(dim, 2 * dim, 4, 2), _instance_norm(2 * dim), nn.ReLU(True)]
            dim *= 2
        layers += [ResBlock(dim) for _ in range(n_res)]
        self.model = nn.Sequential(*layers)
        self.out_ch = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # (B, dim * 2**n_down, H / 2**n_down, W / 2**n_down)


class StyleEncoder(nn.Module):
    """7x7 conv, `n_down` stride-2 4x4 convs (the first two double the width), pool, 1x1 conv."""

    def __init__(self, in_ch: int = 3, dim: int = 64, style_dim: int = 8, n_down: int = 4) -> None:
        super().__init__()
        # No normalisation here: instance norm would wipe out the very statistics style is.
        layers: list[nn.Module] = [*_conv(in_ch, dim, 7), nn.ReLU(True)]
        for i in range(n_down):
            out = 2 * dim if i < 2 else dim
            layers += [*_conv(dim, out, 4, 2), nn.ReLU(True)]
            dim = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).flatten(1)  # (B, style_dim)


class StyleMLP(nn.Module):
    """`n_layers` linear layers (ReLU between them) from a style code to the AdaIN parameters."""

    def __init__(self, style_dim: int, out_dim: int, hidden: int = 256, n_layers: int = 3) -> None:
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"StyleMLP needs n_layers >= 2, got {n_layers}")
        layers: list[nn.Module] = [nn.Linear(style_dim, hidden), nn.ReLU(True)]
        for _ in range(n_layers - 2):
            layers += [nn.Linear(hidden, hidden), nn.ReLU(True)]
        layers.append(nn.Linear(hidden, out_dim))
        self.model = nn.Sequential(*layers)

    def forward(self, style: Tensor) -> Tensor:
        return self.model(style)  # (B, out_dim)


class Decoder(nn.Module):
    """AdaIN residual blocks, `n_up` x (nearest x2, 5x5 conv, layer norm), 7x7 conv, tanh."""

    def __init__(self, in_ch: int = 256, out_ch: int = 3, n_up: int = 2, n_res: int = 4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(AdaINResBlock(in_ch) for _ in range(n_res))
        up: list[nn.Module] = []
        dim = in_ch
        for _ in range(n_up):
            up += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                *_conv(dim, dim // 2, 5),
                LayerNorm(dim // 2),
                nn.ReLU(True),
            ]
            dim //= 2
        up += [*_conv(dim, out_ch, 7), nn.Tanh()]
        self.up = nn.Sequential(*up)

    @property
    def n_adain_params(self) -> int:
        """Length of the parameter vector `forward` takes per sample."""
        return sum(b.n_params for b in self.blocks)

    def forward(self, content: Tensor, params: Tensor) -> Tensor:
        """Render `content` (B, C, h, w) with AdaIN parameters (B, n_adain_params)."""
        if params.shape[1] != self.n_adain_params:
            raise ValueError(
                f"Decoder takes {self.n_adain_params} AdaIN parameters per sample, "
                f"got {params.shape[1]}; build the StyleMLP with out_dim=decoder.n_adain_params"
            )
        x = content
        chunks = params.split([b.n_params for b in self.blocks], 1)
        for block, p in zip(self.blocks, chunks, strict=True):
            x = block(x, p)
        return self.up(x)  # (B, out_ch, h * 2**n_up, w * 2**n_up)


class MUNITGenerator(nn.Module):
    """One domain's auto-encoder: content and style encoders, style MLP and AdaIN decoder."""

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        dim: int = 64,
        style_dim: int = 8,
        n_down: int = 2,
        n_res: int = 4,
        mlp_dim: int = 256,
    ) -> None:
        super().__init__()
        self.style_dim = style_dim
        self.size_multiple = 2**n_down
        self.enc_content = ContentEncoder(in_ch, dim, n_down, n_res)
        self.enc_style = StyleEncoder(in_ch, dim, style_dim, n_down=4)
        self.dec = Decoder(self.enc_content.out_ch, out_ch, n_down, n_res)
        self.mlp = StyleMLP(style_dim, self.dec.n_adain_params, mlp_dim, n_layers=3)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Split an image (B, in_ch, H, W) into (content (B, C, h, w), style (B, style_dim))."""
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Render a content code in a style; an image in [-1, 1], (B, out_ch, H, W)."""
        return self.dec(content, self.mlp(style))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """Translate: keep the content of `x`, take the given style (B, style_dim)."""
        return self.decode(self.enc_content(x), style)

    def random_style(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """Style codes from the prior N(0, I), (B, style_dim), on the generator's device."""
        device = next(self.parameters()).device
        return torch.randn(batch, self.style_dim, generator=generator).to(device)


class MUNITTranslator(nn.Module):
    """Cross-domain translation as one module: content of `src`, decoder and style of `dst`."""

    def __init__(self, src: MUNITGenerator, dst: MUNITGenerator) -> None:
        super().__init__()
        self.src, self.dst = src, dst

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """(B, C_src, H, W) and styles (B, style_dim) -> (B, C_dst, H, W) in [-1, 1]."""
        return self.dst.decode(self.src.enc_content(x), style)


def init_kaiming(net: nn.Module) -> nn.Module:
    """Kaiming-normal (fan-in) conv and linear weights, zero biases: the published MUNIT G init."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


class MultiScaleDiscriminator(nn.Module):
    """`num_scales` PatchGANs, each on the image average-pooled once more than the last."""

    def __init__(
        self, in_ch: int = 3, dim: int = 64, n_layers: int = 4, num_scales: int = 3
    ) -> None:
        super().__init__()
        if n_layers < 1 or num_scales < 1:
            raise ValueError(
                f"MultiScaleDiscriminator needs n_layers >= 1 and num_scales >= 1, "
                f"got n_layers={n_layers}, num_scales={num_scales}"
            )
        self.nets = nn.ModuleList(self._one(in_ch, dim, n_layers) for _ in range(num_scales))
        # count_include_pad=False: border averages are not darkened by the zero padding
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    @staticmethod
    def _one(in_ch: int, dim: int, n_layers: int) -> nn.Sequential:
        """4x4 stride-2 convs doubling the width from the second on, no norm, then 1x1 to 1."""
        layers: list[nn.Module] = []
        width = in_ch
        for i in range(n_layers):
            out = dim * 2**i
            layers += [*_conv(width, out, 4, 2), nn.LeakyReLU(0.2, inplace=True)]
            width = out
        layers.append(nn.Conv2d(width, 1, 1))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Logit maps, finest first: scale k is (B, 1, H / 2**(n_layers + k), ...)."""
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = self.pool(x)
            outs.append(net(x))
        return outs


class ContentClassifier(nn.Module):
    """Tells simulated from real images by their content codes: one logit, > 0 means real."""

    def __init__(self, in_ch: int = 256, width: int = 64, n_layers: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_ch
        for _ in range(n_layers):
            layers += [nn.Conv2d(c, width, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, content: Tensor) -> Tensor:
        # Global pooling so any content-code size works, (B, C, h, w) -> (B, width)
        h = self.features(content).mean((2, 3))
        return self.head(h).squeeze(1)  # (B,) logits
