"""Line plots drawn with Pillow, so run reports need no plotting library."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127))  # fmt: skip
Series = tuple[Sequence[float], Sequence[float]]  # (x values, y values)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def _label(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.1e}"
    return f"{v:.6g}"


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average that skips non-finite values (they stay non-finite)."""
    out, last = [], None
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = v if last is None else weight * last + (1 - weight) * v
        out.append(last)
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # old Pillow or no FreeType: the bitmap font
        return ImageFont.load_default()


def _fade(colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    return tuple(round(c + (255 - c) * amount) for c in colour)  # type: ignore[return-value]


def line_plot(
    series: dict[str, Series],
    path: str | Path,
    title: str = "",
    size: tuple[int, int] = (480, 280),
    smooth: float = 0.0,
    x_label: str = "step",
) -> Path:
    """Draw named (x, y) series into a PNG; smooth > 0 adds an EMA line over faded raw values."""
    w, h = size
    font, small = _font(13), _font(11)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 62, 12, 26 if title else 10, 34
    pts = [
        (float(x), float(y))
        for xs, ys in series.values()
        for x, y in zip(xs, ys, strict=True)
        if math.isfinite(x) and math.isfinite(y)
    ]
    if title:
        draw.text((left, 5), title, fill="black", font=font)
    if not pts:
        draw.text((left, h // 2), "no data", fill="gray", font=font)
        img.save(path)
        return Path(path)
    x_lo, x_hi = min(p[0] for p in pts), max(p[0] for p in pts)
    y_lo, y_hi = min(p[1] for p in pts), max(p[1] for p in pts)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi == y_lo:  # a flat line: give it some room
        pad = abs(y_lo) * 0.1 or 1.0
        y_lo, y_hi = y_lo - pad, y_hi + pad
    margin = (y_hi - y_lo) * 0.05
    y_lo, y_hi = y_lo - margin, y_hi + margin
    pw, ph = w - left - right, h - top - bottom

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x_lo) / (x_hi - x_lo) * pw, top + (y_hi - y) / (y_hi - y_lo) * ph

    for t in nice_ticks(y_lo, y_hi):
        _, py = to_px(x_lo, t)
        draw.line([(left, py), (left + pw, py)], fill=(230, 230, 230))
        text = _label(t)
        tw = draw.textlength(text, font=small)
        draw.text((left - 6 - tw, py - 6), text, fill=(80, 80, 80), font=small)
    for t in nice_ticks(x_lo, x_hi):
        px, _ = to_px(t, y_lo)
        draw.line([(px, top), (px, top + ph)], fill=(240, 240, 240))
        text = _label(t)
        tw = draw.textlength(text, font=small)
        draw.text((px - tw / 2, top + ph + 4), text, fill=(80, 80, 80), font=small)
    draw.rectangle([left, top, left + pw, top + ph], outline=(120, 120, 120))
    label_x = left + pw - draw.textlength(x_label, font=small)
    draw.text((label_x, h - 14), x_label, fill="gray", font=small)

    for i, (xs, ys) in enumerate(series.values()):
        colour = PALETTE[i % len(PALETTE)]
        ys = [float(y) for y in ys]
        layers = [(ys, colour, 2)]
        if smooth > 0 and len(ys) > 2:
            layers = [(ys, _fade(colour, 0.7), 1), (ema(ys, smooth), colour, 2)]
        for values, c, width in layers:
            run: list[tuple[float, float]] = []
            for x, y in [*zip(xs, values, strict=True), (math.nan, math.nan)]:
                if math.isfinite(x) and math.isfinite(y):
                    run.append(to_px(float(x), y))
                    continue
                if len(run) == 1:  # a lone point: a dot, or it would not show
                    (px, py) = run[0]
                    draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=c)
                elif run:
                    draw.line(run, fill=c, width=width, joint="curve")
                run = []
    if len(series) > 1:  # legend in the top-right corner, over a white box
        text_w = max(draw.textlength(name, font=small) for name in series)
        x0 = left + pw - text_w - 34
        box = [x0, top + 3, left + pw - 3, top + 8 + 15 * len(series)]
        draw.rectangle(box, fill="white", outline=(200, 200, 200))
        for i, name in enumerate(series):
            ly = top + 6 + 15 * i
            draw.line(
                [(x0 + 5, ly + 6), (x0 + 21, ly + 6)], fill=PALETTE[i % len(PALETTE)], width=3
            )
            draw.text((x0 + 26, ly), name, fill="black", font=small)
    img.save(path)
    return Path(path)
