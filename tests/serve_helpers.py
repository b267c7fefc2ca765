"""A tiny trained model for the serve tests, made through the CLI like a user would."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from pixmorph.cli import main


def make_tiny_run(root: Path) -> Path:
    """Synthesize 12 pairs at 32 px and train a pix2pix with 8 filters for 2 steps; its run folder."""
    data, run = root / "data", root / "run"
    assert main(["data", "synth", "--out", str(data), "--size", "32", "--n", "12"]) == 0
    args = ["train", "--data", str(data), "--direction", "BtoA", "--size", "32", "--steps", "2"]
    args += ["--batch-size", "2", "--out", str(run), "--no-progress", "train.log_every=1"]
    args += [
        "model.generator.ngf=8",
        "model.discriminator.ndf=8",
        "train.sample_every=2",
        "train.eval_every=2",
    ]
    assert main(args) == 0
    return run


def photo(width: int = 40, height: int = 24, seed: int = 0) -> Image.Image:
    """A random RGB picture of an odd size (not a multiple of the generator's)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def png(img: Image.Image) -> bytes:
    """An image as PNG bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
