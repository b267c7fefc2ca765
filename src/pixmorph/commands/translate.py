"""`pixmorph translate`: run a trained generator on image files of any size."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pixmorph.commands.console import bar
from pixmorph.data.images import IMAGE_EXTENSIONS, DataError, list_images, open_image
from pixmorph.export_formats import onnx_engine
from pixmorph.infer import load_generator, translate

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a trained model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint file")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--output", required=True, help="folder for the translated images")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="for models that go both ways")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument(
        "--fit",
        choices=["pad", "resize"],
        default="pad",
        help="how inputs are brought to a size the generator takes (then back)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16 where the CPU/GPU runs it natively, else fp32",
    )
    p.add_argument(
        "--engine",
        choices=["torch", "onnx"],
        default="torch",
        help="onnx: export the generator and run it in onnxruntime (fp32)",
    )
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files with a warning")
    p.set_defaults(run=run)


def input_files(path: str) -> list[Path]:
    """One file, or the images of a folder."""
    p = Path(path)
    if p.is_dir():
        try:
            return list_images(p)
        except DataError as e:
            raise DataError(f"--input: {e}") from e
    if not p.exists():
        raise DataError(f"--input {p} does not exist")
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(f"--input {p} is not an image file ({', '.join(IMAGE_EXTENSIONS)})")
    return [p]


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise DataError("--batch-size must be at least 1")
    if args.engine == "onnx":
        exported = load_generator(args.checkpoint, args.direction, "cpu", "fp32")
        translator = onnx_engine(exported, args.device)
    else:
        translator = load_generator(args.checkpoint, args.direction, args.device, args.precision)
    files = input_files(args.input)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    images, names, skipped = [], [], 0
    for f in files:
        try:
            images.append(open_image(f, translator.in_channels))
            names.append(f.stem)
        except DataError as e:
            if not args.skip_bad:
                raise DataError(f"{e} (use --skip-bad to skip such files)") from e
            log.warning("skipping %s", e)
            skipped += 1
    with bar(len(images), "translate") as progress:
        results = translate(translator, images, args.batch_size, args.fit, progress.update)
    for name, img in zip(names, results, strict=True):
        img.save(out / f"{name}.png")
    print(
        f"translated {len(results)} image(s) into {out}"
        + (f"; skipped {skipped}" if skipped else "")
    )
    return 0
