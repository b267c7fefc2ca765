"""What evaluation measures for a method: a named metric set and an optional baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from pixmorph import metrics

PSNR_CAP = 100.0  # identical images have infinite PSNR; JSON has no infinity

MetricFn = Callable[[Tensor, Tensor], Tensor]  # (output, target) in [-1, 1] -> (B,)
BaselineFn = Callable[[Tensor, tuple[int, int]], Tensor]  # (input, target (H, W)) -> prediction


@dataclass(frozen=True)
class Metric:
    """One per-image metric: its report key, its label for people, and how to print it."""

    name: str
    label: str
    fn: MetricFn
    digits: int = 4
    unit: str = ""

    def format(self, value: float, unit: bool = True) -> str:
        """`value` with this metric's precision (and unit)."""
        text = f"{value:.{self.digits}f}"
        return f"{text} {self.unit}" if unit and self.unit else text


@dataclass(frozen=True)
class EvalProtocol:
    """The metrics a method is scored with; a baseline (e.g. bicubic) is scored alongside."""

    metrics: tuple[Metric, ...]
    note: str = ""  # how the numbers are computed, for reports (empty: the plain RGB metrics)
    baseline_name: str = ""
    baseline: BaselineFn | None = None


def psnr_capped(x: Tensor, y: Tensor) -> Tensor:
    """RGB PSNR in dB, capped at PSNR_CAP so identical images stay JSON-friendly."""
    return metrics.psnr(x, y).clamp(max=PSNR_CAP)


# The paired-translation default (pix2pix, CycleGAN, ...): L1, PSNR and SSIM on RGB in [-1, 1].
PAIRED_RGB = EvalProtocol(
    metrics=(
        Metric("l1", "L1", metrics.l1),
        Metric("psnr", "PSNR", psnr_capped, digits=2, unit="dB"),
        Metric("ssim", "SSIM", metrics.ssim),
    )
)
