"""Flood evaluation: does dry -> flooded translation keep the scene and paint believable water?

On a flood set (`pixmorph data synth --flood`: testA/ dry scenes, testB/ the same scenes
flooded, testmaskA/ each scene's floodable region, same stems) every figure is taken per image
with mask m (1 = may become water) on images in [-1, 1]:

- keep_psnr, keep_ssim: output against the *source* outside the mask (preservation). PSNR over
  the pixels with m = 0 (all channels); SSIM (11x11 Gaussian window) averaged over the window
  centres with m = 0.
- water_l1, water_psnr: output against the *true flooded* image inside the mask (m = 1).
- water_colour: distance of the water region's colour statistics, in [0, 1] units:
  sqrt(sum over channels of (mean_out - mean_true)^2 + (std_out - std_true)^2), mean and std
  over the m = 1 pixels. Alignment-free: it rewards water of the right colour and texture
  strength even where ripples fall elsewhere.
- seg_agreement (with a segmenter): the fraction of m = 0 pixels whose predicted class on the
  output equals that on the source.

The identity (the dry source itself: no flooding at all) is scored alike as the baseline a model
must beat on the water figures.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.data.images import list_images, open_image, save_image, to_tensor
from pixmorph.errors import ConfigError, DataError
from pixmorph.evaluation.page import SORT_JS, STYLE
from pixmorph.evaluation.summary import write_summary
from pixmorph.inference.translator import Translator, translate

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
KEEP = ("keep_psnr", "keep_ssim")
WATER = ("water_l1", "water_psnr", "water_colour")


def flood_files(root: str | Path) -> list[tuple[str, Path, Path, Path]]:
    """(stem, dry, flooded, mask) of every test scene of a flood set, matched by stem."""
    r = Path(root)
    folders = [r / "testA", r / "testB", r / "testmaskA"]
    for f in folders:
        if not f.is_dir():
            raise DataError(
                f"--mode flood needs {f} (a flood set holds testA/, testB/ and testmaskA/ with "
                "the same stems); make one with `pixmorph data synth --flood`"
            )
    by_stem = [{p.stem: p for p in list_images(f)} for f in folders[1:]]
    out = []
    for dry in list_images(folders[0]):
        found = [d.get(dry.stem) for d in by_stem]
        for folder, p in zip(folders[1:], found, strict=True):
            if p is None:
                raise DataError(f"{dry} has no {folder.name}/{dry.stem}.* (matched by stem)")
        out.append((dry.stem, dry, found[0], found[1]))
    return out


def read_mask(path: Path) -> Tensor:
    """(1, H, W) mask in {0, 1} from an L image: 1 (>= 128) = may become water."""
    return (to_tensor(open_image(path, 1)) >= 0).float()  # [-1, 1]: 128/255 maps to >= 0


def masked_psnr(x: Tensor, y: Tensor, mask: Tensor) -> float:
    """PSNR (range 2) of (C, H, W) images over the pixels where the (1, H, W) mask is 1."""
    n = float(mask.sum()) * x.shape[0]
    if n == 0:
        return math.nan
    mse = float(((x.double() - y.double()) ** 2 * mask).sum()) / n
    return 10 * math.log10(4.0 / mse) if mse > 0 else math.inf


def masked_ssim(x: Tensor, y: Tensor, mask: Tensor) -> float:
    """Gaussian-window SSIM of (C, H, W) images averaged over window centres where mask is 1."""
    c = x.shape[0]
    k = SSIM_WINDOW
    g1 = torch.exp(-((torch.arange(k, dtype=torch.float64) - k // 2) ** 2) / (2 * SSIM_SIGMA**2))
    g1 = g1 / g1.sum()
    win = (g1[:, None] * g1[None, :]).expand(5 * c, 1, k, k)
    a, b = x.double()[None], y.double()[None]
    pad = k // 2  # keep the map at image size: centres near the border see reflected pixels
    stack = F.pad(torch.cat([a, b, a * a, b * b, a * b], 1), (pad,) * 4, mode="reflect")
    mu_x, mu_y, e_xx, e_yy, e_xy = F.conv2d(stack, win, groups=5 * c).split(c, 1)
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * (e_xy - mu_x * mu_y) + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (e_xx - mu_x**2 + e_yy - mu_y**2 + c2)
    ssim_map = (num / den).mean(1)[0]  # (H, W)
    m = mask[0].bool()
    return float(ssim_map[m].mean()) if m.any() else math.nan


def colour_distance(x: Tensor, y: Tensor, mask: Tensor) -> float:
    """Distance of per-channel mean and std over the mask's pixels, in [0, 1] units."""
    m = mask[0].bool()
    if not m.any():
        return math.nan
    px, py = (x.double()[:, m] + 1) / 2, (y.double()[:, m] + 1) / 2  # (C, N)
    d_mean = px.mean(1) - py.mean(1)
    d_std = px.std(1, unbiased=False) - py.std(1, unbiased=False)
    return float(torch.sqrt((d_mean**2).sum() + (d_std**2).sum()))


def water_scores(out: Tensor, flooded: Tensor, mask: Tensor) -> dict[str, float]:
    """water_l1, water_psnr and water_colour of an output inside the mask."""
    n = float(mask.sum()) * out.shape[0]
    l1 = float(((out.double() - flooded.double()).abs() * mask).sum()) / n if n else math.nan
    return {
        "water_l1": l1,
        "water_psnr": masked_psnr(out, flooded, mask),
        "water_colour": colour_distance(out, flooded, mask),
    }


@torch.no_grad()
def seg_agreement(segmenter: nn.Module, src: Tensor, out: Tensor, keep: Tensor) -> float:
    """Fraction of the keep (1, H, W) = 1 pixels labelled alike on source and output."""
    device = next(iter(segmenter.parameters()), torch.empty(0)).device
    logits = segmenter(torch.stack([src, out]).to(device)).float().cpu()  # (2, K, h, w)
    if logits.dim() != 4:
        raise ConfigError(f"--segmenter must return (B, classes, H, W) logits, got {logits.shape}")
    if logits.shape[2:] != src.shape[1:]:
        logits = F.interpolate(logits, size=src.shape[1:], mode="bilinear", align_corners=False)
    labels = logits.argmax(1)  # (2, H, W)
    m = keep[0].bool()
    return float((labels[0] == labels[1])[m].float().mean()) if m.any() else math.nan


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def evaluate_flood(
    translator: Translator,
    root: str | Path,
    out_dir: str | Path | None = None,
    save_images: bool = True,
    on_batch: Callable[[int], Any] | None = None,
    segmenter: nn.Module | None = None,
) -> dict[str, Any]:
    """Translate every testA scene and score keep/water figures (see the module docstring)."""
    if translator.in_channels != translator.out_channels:
        raise ConfigError("--mode flood compares outputs with their inputs: channels must match")
    out = Path(out_dir) if out_dir else None
    rows = []
    for stem, dry, wet, mask_path in flood_files(root):
        src = to_tensor(open_image(dry, translator.in_channels))  # (C, H, W)
        flooded = to_tensor(open_image(wet, translator.out_channels))
        mask = read_mask(mask_path)  # (1, H, W)
        if not (src.shape[1:] == flooded.shape[1:] == mask.shape[1:]):
            raise DataError(f"{dry}, {wet} and {mask_path} differ in size")
        y = translate(translator, src.unsqueeze(0))[0]
        keep = 1 - mask
        row: dict[str, Any] = {
            "name": stem,
            "keep_psnr": masked_psnr(y, src, keep),
            "keep_ssim": masked_ssim(y, src, keep),
            **water_scores(y, flooded, mask),
        }
        if segmenter is not None:
            row["seg_agreement"] = seg_agreement(segmenter, src, y, keep)
        row["baseline"] = water_scores(src, flooded, mask)  # the identity: no flooding
        rows.append(row)
        if out and save_images:
            for kind, t in (("input", src), ("output", y), ("target", flooded)):
                save_image(t, out / "images" / f"{stem}_{kind}.png")
            save_image(mask * 2 - 1, out / "images" / f"{stem}_mask.png")
        if on_batch:
            on_batch(1)
    if not rows:
        raise DataError(f"{Path(root) / 'testA'} holds no images")
    names = [*KEEP, *WATER, *(["seg_agreement"] if segmenter is not None else [])]
    summary = {
        "mode": "flood",
        "count": len(rows),
        "data": str(root),
        "mean": {k: _nanmean([r[k] for r in rows]) for k in names},
        "baseline": {
            "name": "identity",
            "mean": {k: _nanmean([r["baseline"][k] for r in rows]) for k in WATER},
        },
        "images": rows,
        "checkpoint_step": translator.step,
        "direction": translator.direction or translator.config.data.direction,
    }
    if out:
        write_summary(summary, out)
        (out / "index.html").write_text(render_flood(summary, save_images))
    return summary


def flood_line(m: dict[str, float]) -> str:
    """The flood figures on one line."""
    text = (
        f"keep PSNR {m['keep_psnr']:.2f} dB  keep SSIM {m['keep_ssim']:.4f}  water L1 "
        f"{m['water_l1']:.4f}  water PSNR {m['water_psnr']:.2f} dB  water colour "
        f"{m['water_colour']:.4f}"
    )
    return text + (f"  seg agreement {m['seg_agreement']:.4f}" if "seg_agreement" in m else "")


def render_flood(summary: dict[str, Any], with_images: bool = True) -> str:
    """Mean figures, the identity baseline, and one row per scene (sortable)."""
    names = list(summary["mean"])
    kinds = ("input", "output", "target", "mask") if with_images else ()
    head = "<th>name</th>" + "".join(f"<th>{k}</th>" for k in names)
    head += "".join(f"<th data-nosort>{k}</th>" for k in kinds)
    body = []
    for r in summary["images"]:
        name = html.escape(r["name"])
        cells = f"<td data-v='{name}' style='text-align:left'>{name}</td>"
        cells += "".join(f"<td data-v='{r[k]!r}'>{r[k]:.4g}</td>" for k in names)
        cells += "".join(
            f"<td><img src='images/{name}_{k}.png' alt='{k}' loading='lazy'></td>" for k in kinds
        )
        body.append(f"<tr>{cells}</tr>")
    base = summary["baseline"]
    return (
        f"<!doctype html><meta charset='utf-8'><title>pixmorph flood evaluation</title>"
        f"<style>{STYLE}</style><h1>pixmorph flood evaluation</h1><p>{summary['count']} scenes "
        f"of {html.escape(summary['data'])}, checkpoint step {summary['checkpoint_step']}</p>"
        f"<p>mean {flood_line(summary['mean'])}</p><p>identity (no flooding): "
        + " &middot; ".join(f"{k} {v:.4g}" for k, v in base["mean"].items())
        + f"</p><table class='sortable'><thead><tr>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>\n"
        + SORT_JS
    )
