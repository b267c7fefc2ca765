"""A history of generated images, so a discriminator also sees fakes from earlier generators."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """Up to `size` past fakes; `query` hands D a mix of new and stored ones (size 0: only new).

    Until the pool is full every new image is stored and returned. Once full, each image of a
    batch is, with probability 0.5, swapped for a random stored one (which it replaces), else
    returned as is. Randomness comes from torch's global generator, which checkpoints save, and
    the stored images are part of `state_dict`, so a resumed run draws exactly the same fakes.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"an image pool holds size >= 0 images, got {size}")
        self.size = size
        self.images: list[Tensor] = []  # each (C, H, W), detached

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """(B, C, H, W) new fakes -> (B, C, H, W) fakes for the discriminator, detached."""
        images = images.detach()
        if self.size == 0:
            return images
        out: list[Tensor] = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                k = int(torch.randint(len(self.images), ()).item())
                out.append(self.images[k])
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (tensors in a list: safe for weights-only checkpoints)."""
        return {"size": self.size, "images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        """Restore what state_dict() returned, moving the images to `device`."""
        images = list(state.get("images", []))
        if len(images) > self.size:
            raise ValueError(
                f"the saved image pool holds {len(images)} images, more than its size {self.size}"
            )
        self.images = [t.to(device) if device is not None else t for t in images]
