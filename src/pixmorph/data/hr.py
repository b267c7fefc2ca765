"""Super-resolution data: HR images, with the LR input made on the fly by bicubic downscaling.

The one resampling convention, used for training inputs, evaluation inputs and the bicubic
baseline alike: Pillow's bicubic filter (Keys kernel, a = -0.5, widened to antialias when
shrinking, like MATLAB's `imresize`) applied to the 8-bit image, so LR inputs are 8-bit images
too. HR images are first cropped to a multiple of `scale` from the top-left (the literature's
"modcrop"), so LR pixels tile HR pixels exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from pixmorph.data.base import ImageFiles, KeyedDataset
from pixmorph.data.images import DataError, list_images, to_pil, to_tensor
from pixmorph.data.transforms import draw_augment


def bicubic_resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize an 8-bit image to (width, height) with the bicubic convention of this module."""
    return img if img.size == size else img.resize(size, Image.Resampling.BICUBIC)


def modcrop(img: Image.Image, scale: int) -> Image.Image:
    """Crop width and height down to multiples of `scale`, keeping the top-left corner."""
    w, h = img.size
    return img.crop((0, 0, w - w % scale, h - h % scale))


def downscale(hr: Image.Image, scale: int) -> Image.Image:
    """The LR image of an HR image whose sides are multiples of `scale`."""
    w, h = hr.size
    if w % scale or h % scale:
        raise ValueError(f"downscale: {w}x{h} is not a multiple of scale {scale}; modcrop first")
    return bicubic_resize(hr, (w // scale, h // scale))


def bicubic_upscale(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic upscaling of (B, C, h, w) in [-1, 1] (8-bit levels) to (B, C, H, W): the baseline."""
    # Through PIL on the 8-bit image, exactly as the LR was made; the inputs come from 8-bit
    # files, so the round trip to PIL is lossless.
    h, w = size
    return torch.stack([to_tensor(bicubic_resize(to_pil(t), (w, h))) for t in lr])


class HRDataset(KeyedDataset):
    """Yields {"a": LR, "b": HR, "path"}: random HR crops when training, whole images otherwise."""

    def __init__(
        self,
        folder: str | Path,
        *,
        scale: int,
        crop_size: int = 96,
        train: bool = True,
        flip: bool = True,
        channels: int = 3,
        seed: int = 0,
        verify: bool = True,
        skip_bad: bool = False,
        cache: bool = False,
        max_images: int = 0,
    ) -> None:
        if scale < 1:
            raise DataError(f"scale must be >= 1, got {scale}")
        if train and crop_size % scale:
            raise DataError(
                f"the HR crop size {crop_size} must be a multiple of the scale {scale} "
                f"(e.g. {crop_size - crop_size % scale or scale})"
            )
        files = list_images(folder)
        if max_images:
            files = files[:max_images]
        smallest = crop_size if train else scale

        def check(path: Path, img: Image.Image) -> None:
            w, h = img.size
            if min(w, h) < smallest:
                need = f"the HR crop size {crop_size}" if train else f"the scale {scale}"
                raise DataError(f"{path}: image is {w}x{h}, smaller than {need}")

        self.images = ImageFiles(files, channels, check, verify, skip_bad, cache)
        self.scale, self.crop_size, self.train = scale, crop_size, train
        self.flip, self.seed = flip, seed

    def __len__(self) -> int:
        return len(self.images)

    def hr_image(self, key: int) -> Image.Image:
        """The HR image of a sample: a random crop (training) or the modcropped whole image."""
        img = self.images.load(key % len(self.images))
        if not self.train:
            return modcrop(img, self.scale)
        aug = draw_augment(self.rng(key), self.flip)
        w, h = img.size
        s = self.crop_size
        x, y = round(aug.crop_x * (w - s)), round(aug.crop_y * (h - s))
        img = img.crop((x, y, x + s, y + s))
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if aug.flip else img

    def __getitem__(self, key: int) -> dict[str, Tensor | str]:
        hr = self.hr_image(key)
        return {
            "a": to_tensor(downscale(hr, self.scale)),  # (C, H/scale, W/scale)
            "b": to_tensor(hr),  # (C, H, W)
            "path": str(self.images.files[key % len(self.images)]),
        }
