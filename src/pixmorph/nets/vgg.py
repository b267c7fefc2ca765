"""VGG19's convolutional features (Simonyan & Zisserman, 2015), cut after a chosen ReLU."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

# Output widths of the 16 convs; "M" is a 2x2 max pool. Module indices inside `features` follow
# this list with a ReLU after every conv, so they match the common VGG19 state-dict layout
# (`features.0.weight` is conv1_1, `features.34.weight` is conv5_4).
VGG19_PLAN: tuple[int | str, ...] = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, 256, "M"),
    *(512, 512, 512, 512, "M"),
    *(512, 512, 512, 512, "M"),
)

VGGLayer = Literal["relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"]


def layer_indices() -> dict[str, tuple[int, int]]:
    """`reluB_K` -> (index of that ReLU in `features`, index of its conv), for every conv."""
    out: dict[str, tuple[int, int]] = {}
    block, k, i = 1, 0, 0
    for item in VGG19_PLAN:
        if item == "M":
            block, k, i = block + 1, 0, i + 1
        else:
            k += 1
            out[f"relu{block}_{k}"] = (i + 1, i)
            i += 2
    return out


class VGG19Features(nn.Module):
    """VGG19 `features` up to and including the ReLU `layer`: (B, 3, H, W) normalised -> maps."""

    # Inputs are ImageNet-normalised RGB in [0, 1] units (the caller normalises). The default
    # relu5_4 is SRGAN's phi_5,4: the activation after the last conv before the fifth max pool.

    def __init__(self, layer: VGGLayer = "relu5_4") -> None:
        super().__init__()
        indices = layer_indices()
        if layer not in indices:
            raise ValueError(f"VGG19 layer must be one of {', '.join(indices)}, got {layer!r}")
        last = indices[layer][0]
        layers: list[nn.Module] = []
        c_in = 3
        for item in VGG19_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(item)
        self.layer = layer
        self.features = nn.Sequential(*layers[: last + 1])

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)  # (B, C_layer, H / 2^pools, W / 2^pools)
