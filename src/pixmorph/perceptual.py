"""Feature-space (perceptual) losses on a frozen VGG19 loaded from a local weights file."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.checkpoint import CheckpointError, load_weights_only
from pixmorph.nets.vgg import VGG19Features, VGGLayer

# ImageNet statistics the VGG19 weights were trained with (RGB in [0, 1] units).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_state_dict(path: str | Path, option: str = "model.vgg_weights") -> dict[str, Tensor]:
    """Tensors of a .pth/.pt (weights only) or .safetensors file; errors name `option`."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{option}: {p} does not exist; give a VGG19 weights file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = load_weights_only(p, f"{option}:")
    except CheckpointError:
        raise
    except Exception as e:  # any reading failure means the same thing to the user
        raise CheckpointError(
            f"{option}: {p} could not be read as a state dict ({type(e).__name__}: {e})"
        ) from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a wrapped state dict
    if not isinstance(state, dict):
        raise CheckpointError(f"{option}: {p} does not hold a state dict")
    return state


def load_vgg19(
    path: str | Path, layer: VGGLayer = "relu5_4", option: str = "model.vgg_weights"
) -> VGG19Features:
    """A frozen VGG19Features from a state dict in the `features.N.weight` layout."""
    net = VGG19Features(layer)
    state = read_state_dict(path, option)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise CheckpointError(
            f"{option}: {path} lacks {missing[0]} ({len(missing)} of {len(own)} needed tensors "
            "missing); expected a VGG19 state dict with keys like features.0.weight ... "
            "features.34.bias (the torchvision layout)"
        )
    for k, v in own.items():
        if state[k].shape != v.shape:
            raise CheckpointError(
                f"{option}: {path} has {k} of shape {tuple(state[k].shape)}, VGG19 needs "
                f"{tuple(v.shape)}; is it a VGG19 (not VGG16) state dict?"
            )
    net.load_state_dict({k: state[k].float() for k in own})
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class VGGContentLoss:
    """SRGAN's content loss: MSE between VGG19 feature maps of two images in [-1, 1]."""

    # Deliberately not an nn.Module attribute of the method: the frozen VGG is not trained, so it
    # stays out of checkpoints and out of the inference build (the weights file is the source).

    def __init__(self, net: VGG19Features, feature_scale: float, device: torch.device) -> None:
        self.net = net.to(device)
        self.feature_scale = (
            feature_scale  # SRGAN rescales phi by 1/12.75, i.e. the MSE by 1/12.75^2
        )
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def features(self, x: Tensor) -> Tensor:
        """Scaled VGG19 feature maps of (B, 3, H, W) in [-1, 1]."""
        x = ((x + 1.0) / 2.0 - self.mean) / self.std
        return self.net(x) * self.feature_scale

    def __call__(self, fake: Tensor, real: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.features(real)
        return F.mse_loss(self.features(fake).float(), target.float())
