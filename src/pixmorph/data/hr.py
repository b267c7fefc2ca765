"""Super-resolution data: HR images, with the LR input made on the fly by bicubic downscaling.

The one resampling convention, used for training inputs, evaluation inputs and the bicubic
baseline alike: Pillow's bicubic filter (Keys kernel, a = -0.5, widened to antialias when
shrinking, like MATLAB's `imresize`) applied to the 8-bit image, so LR inputs of 8-bit files are
8-bit images too. (16-bit and float files are resized with the same filter in float, without
rounding.) HR images are first cropped to a multiple of `scale` from the top-left (the
literature's "modcrop"), so LR pixels tile HR pixels exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pixmorph.data.base import KeyedDataset
from pixmorph.data.images import (
    PEAK,
    check_channels,
    from_tensor,
    match_channels,
    to_tensor,
)
from pixmorph.data.load_options import LoadOptions
from pixmorph.errors import DataError

BICUBIC = Image.Resampling.BICUBIC


def bicubic_resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) pixels to (width, height) with Pillow's bicubic, channel by channel."""
    if pixels.shape[1::-1] == size:
        return pixels
    if pixels.dtype == np.uint8:
        # mode L per channel filters and rounds exactly as Pillow's RGB resize does
        planes = [
            np.asarray(Image.fromarray(pixels[:, :, c]).resize(size, BICUBIC))
            for c in range(pixels.shape[2])
        ]
        return np.stack(planes, axis=2)
    peak = PEAK[pixels.dtype]
    planes = [
        np.asarray(
            Image.fromarray(pixels[:, :, c].astype(np.float32) / peak, "F").resize(size, BICUBIC)
        )
        for c in range(pixels.shape[2])
    ]
    out = np.clip(np.stack(planes, axis=2), 0.0, 1.0)
    return out if pixels.dtype == np.float32 else np.round(out * peak).astype(pixels.dtype)


def bicubic_upscale(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic upscaling of (B, C, h, w) in [-1, 1] to (B, C, H, W) on 8-bit levels: the baseline."""
    # LR inputs of 8-bit files are 8-bit levels, so this round trip is lossless for them
    h, w = size
    return torch.stack([to_tensor(bicubic_resize(from_tensor(t), (w, h))) for t in lr])


# SRResNet's published 96x96 HR crops
HR_OPTIONS = LoadOptions(crop_size=96)


class HRDataset(KeyedDataset):
    """Yields {"a": LR, "b": HR, "path"}: random HR crops when training, whole images otherwise."""

    def __init__(
        self,
        folder: str | Path,
        *,
        scale: int,
        channels: int = 3,
        options: LoadOptions = HR_OPTIONS,
    ) -> None:
        crop_size, train = options.crop_size, options.train
        if scale < 1:
            raise DataError(f"scale must be >= 1, got {scale}")
        if train and crop_size % scale:
            raise DataError(
                f"the HR crop size {crop_size} must be a multiple of the scale {scale} "
                f"(e.g. {crop_size - crop_size % scale or scale})"
            )
        self.opt = options
        self.scale, self.crop_size, self.train = scale, crop_size, train
        self.channels = channels
        self.images = options.image_files(options.files(folder), check=self._check)

    def _check(self, path: Path, pixels: np.ndarray) -> None:
        check_channels(path, pixels.shape[2], self.channels, "data.in_channels")
        h, w = pixels.shape[:2]
        smallest = self.crop_size if self.train else self.scale
        if min(w, h) < smallest:
            need = f"the HR crop size {self.crop_size}" if self.train else f"the scale {self.scale}"
            raise DataError(f"{path}: image is {w}x{h}, smaller than {need}")

    def __len__(self) -> int:
        return len(self.images)

    def hr_pixels(self, key: int) -> np.ndarray:
        """The HR pixels of a sample: a random crop (training) or the modcropped whole image."""
        i = key % len(self.images)
        pixels = self.images.load(i)
        if pixels.shape[2] != self.channels:
            x = match_channels(to_tensor(pixels), self.channels, str(self.images.files[i]))
            pixels = from_tensor(x, pixels.dtype)
        h, w = pixels.shape[:2]
        if not self.train:
            return pixels[: h - h % self.scale, : w - w % self.scale]
        aug = self.opt.augment(self.rng(key))
        s = self.crop_size
        x0, y0 = round(aug.crop_x * (w - s)), round(aug.crop_y * (h - s))
        crop = pixels[y0 : y0 + s, x0 : x0 + s]
        crop = crop[:, ::-1] if aug.flip else crop
        return np.rot90(crop, aug.turns) if aug.turns else crop  # as transforms.orient

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        hr = self.hr_pixels(key)
        h, w = hr.shape[:2]
        lr = bicubic_resize(np.ascontiguousarray(hr), (w // self.scale, h // self.scale))
        return {
            "a": to_tensor(lr),  # (C, H/scale, W/scale)
            "b": to_tensor(np.ascontiguousarray(hr)),  # (C, H, W)
            "path": str(self.images.files[key % len(self.images)]),
        }
