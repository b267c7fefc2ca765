"""A frozen segmentation network read from a file: TorchScript, or ONNX turned into torch modules.

The network takes an image and gives per-class logits (B, K, H, W). Its own input convention is
stated by the caller: `input_range` (what [-1, 1] images are mapped to before the network sees
them) and optionally a per-channel `mean`/`std` applied after that. Its weights never train, but
gradients flow through it to its input (the semantic-consistency loss needs them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from pixmorph.errors import ConfigError

InputRange = Literal["-1,1", "0,1", "0,255"]
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")


class FrozenSegmenter(nn.Module):
    """Wraps a segmentation network: maps [-1, 1] images to its input convention, stays in eval."""

    def __init__(
        self,
        net: nn.Module,
        input_range: InputRange = "-1,1",
        mean: Sequence[float] = (),
        std: Sequence[float] = (),
    ) -> None:
        super().__init__()
        if input_range not in ("-1,1", "0,1", "0,255"):
            raise ConfigError(f"segmenter input range {input_range!r}: use -1,1 or 0,1 or 0,255")
        if len(mean) != len(std):
            raise ConfigError(
                f"segmenter mean has {len(mean)} values and std {len(std)}; give one per channel"
            )
        if any(s <= 0 for s in std):
            raise ConfigError(f"segmenter std must be positive, got {list(std)}")
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.input_range = input_range
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32), False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32), False)

    def train(self, mode: bool = True) -> FrozenSegmenter:
        # batch norm and dropout must behave as at export whatever the method's mode is
        super().train(False)
        return self

    def normalize(self, x: Tensor) -> Tensor:
        """[-1, 1] images (B, C, H, W) in the network's own input convention."""
        if self.input_range == "0,1":
            x = (x + 1) / 2
        elif self.input_range == "0,255":
            x = (x + 1) * 127.5
        if self.mean.numel():
            if self.mean.numel() != x.shape[1]:
                raise ConfigError(
                    f"segmenter mean/std have {self.mean.numel()} values but the images "
                    f"{x.shape[1]} channels; give one per channel"
                )
            x = (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, C, H, W) in [-1, 1] -> logits (B, K, H, W)."""
        logits = self.net(self.normalize(x.float()))
        if logits.dim() != 4 or logits.shape[0] != x.shape[0]:
            raise ConfigError(
                f"the segmenter gave {tuple(logits.shape)} for an input {tuple(x.shape)}; it "
                "must give per-class logits (B, K, H, W)"
            )
        if logits.shape[-2:] != x.shape[-2:]:
            # a network that predicts at a lower resolution: logits back at the image size
            logits = nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear")
        return logits


def _read_onnx(path: Path) -> nn.Module:
    """An ONNX graph as torch modules (onnx2torch), or a ConfigError saying why not."""
    try:
        import onnx  # optional dependencies: only an ONNX segmenter needs them
        from onnx2torch import convert
    except ImportError as e:
        raise ConfigError(
            f"model.segmenter {path} is ONNX, which needs onnx and onnx2torch "
            f"(pip install 'pixmorph[climate]'; {e}); or export the segmenter as TorchScript"
        ) from e
    try:
        return convert(onnx.load(str(path)))
    except Exception as e:  # any failure of the converter means: this graph cannot be used
        raise ConfigError(
            f"model.segmenter {path}: onnx2torch could not turn this ONNX graph into torch "
            f"modules ({type(e).__name__}: {e}); export the segmenter as TorchScript instead"
        ) from e


def load_segmenter(
    path: str | Path,
    device: torch.device | str = "cpu",
    input_range: InputRange = "-1,1",
    mean: Sequence[float] = (),
    std: Sequence[float] = (),
) -> FrozenSegmenter:
    """Load a frozen segmenter (TorchScript .pt/.ts, or .onnx) onto `device`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"model.segmenter {p} does not exist; give a TorchScript or ONNX file")
    if p.suffix.lower() == ".onnx":
        net = _read_onnx(p)
    elif p.suffix.lower() in TORCHSCRIPT_SUFFIXES:
        try:
            net = torch.jit.load(str(p), map_location=device)
        except RuntimeError as e:
            raise ConfigError(
                f"model.segmenter {p} is not a TorchScript file ({e}); save the network with "
                "torch.jit.script(net).save(path) or give an .onnx file"
            ) from e
    else:
        raise ConfigError(
            f"model.segmenter {p}: unknown suffix {p.suffix!r}; give TorchScript "
            f"({', '.join(TORCHSCRIPT_SUFFIXES)}) or ONNX (.onnx)"
        )
    return FrozenSegmenter(net, input_range, mean, std).to(device)
