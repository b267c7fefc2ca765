"""Sample grids: rows of images side by side in one PNG."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.data.images import save_image


def _to_rgb(x: Tensor, size: tuple[int, int]) -> Tensor:
    x = x.detach().float().cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 2:  # e.g. two chroma planes: show them with a zero third channel
        x = torch.cat([x, torch.zeros_like(x[:, :1])], 1)
    elif x.shape[1] > 3:
        x = x[:, :3]
    if tuple(x.shape[2:]) != size:
        x = F.interpolate(x, size=size, mode="nearest")
    return x


def make_grid(panels: list[dict[str, Tensor]], pad: int = 2) -> Tensor:
    """Stack panels vertically; each sample is a row, each named image a column. (3, H, W)."""
    h = max(t.shape[2] for p in panels for t in p.values())
    w = max(t.shape[3] for p in panels for t in p.values())
    cols = max(len(p) for p in panels)
    rows: list[Tensor] = []
    for panel in panels:
        images = [_to_rgb(t, (h, w)) for t in panel.values()]
        for b in range(images[0].shape[0]):
            row = torch.ones(3, h, cols * (w + pad) - pad)
            for c, img in enumerate(images):
                row[:, :, c * (w + pad) : c * (w + pad) + w] = img[b]
            rows.append(row)
    grid = torch.ones(3, len(rows) * (h + pad) - pad, cols * (w + pad) - pad)
    for r, row in enumerate(rows):
        grid[:, r * (h + pad) : r * (h + pad) + h] = row
    return grid


def save_grid(panels: list[dict[str, Tensor]], path: str | Path) -> Path:
    """Write the grid of `panels` as a PNG."""
    save_image(make_grid(panels), path)
    return Path(path)
