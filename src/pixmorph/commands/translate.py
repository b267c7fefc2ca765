"""`pixmorph translate`: run a trained generator on image files of any size."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pixmorph.commands.console import bar
from pixmorph.commands.inference_args import add_device_flags, add_ensemble_flag
from pixmorph.commands.reference_args import add_reference_flags
from pixmorph.data.images import (
    IMAGE_EXTENSIONS,
    TIFF_SUFFIXES,
    list_images,
    match_channels,
    read_image,
    save_image,
    to_tensor,
)
from pixmorph.data.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, pixel_limit
from pixmorph.errors import ConfigError, DataError
from pixmorph.inference.autotile import BUDGET_ENV, parse_bytes
from pixmorph.inference.export import onnx_engine
from pixmorph.inference.loading import load_generator
from pixmorph.inference.styles import encode_style, random_styles, with_style
from pixmorph.inference.translator import Translator, translate
from pixmorph.speed.allocator import reuse_freed_memory

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a trained model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="run folder, checkpoint file, or a pix2pix/CycleGAN state dict (.pth, .safetensors)",
    )
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
    p.add_argument(
        "--tile",
        type=int,
        help="translate inputs larger than this many px in overlapping tiles (bounded memory); "
        "0: whole images; default: the model's own (super-resolution: 128)",
    )
    p.add_argument("--overlap", type=int, help="px shared by neighbouring tiles (default: model's)")
    add_device_flags(p)
    add_ensemble_flag(p)
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the generator with its weights frozen in: 10-60 s at the first image "
        "(and at each new image size), then faster per image (unet_256 bf16 on a CPU: ~1.5x); "
        "pays for large folders",
    )
    p.add_argument(
        "--engine",
        choices=["torch", "onnx"],
        default="torch",
        help="onnx: export the generator and run it in onnxruntime (fp32)",
    )
    p.add_argument(
        "--styles",
        type=int,
        metavar="K",
        help="multimodal models (MUNIT): write K outputs per input, NAME_s0 .. NAME_s{K-1}, each "
        "in a random style code drawn N(0, I) from --seed; default: one output in the zero code",
    )
    p.add_argument(
        "--style-from",
        metavar="IMAGE",
        help="multimodal models: take the style code from this example of the target domain",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the --styles codes")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files with a warning")
    p.add_argument(
        "--max-pixels",
        type=float,
        help=f"refuse input files larger than this many pixels, checked before decoding "
        f"(default: ${MAX_PIXELS_ENV} or {DEFAULT_MAX_PIXELS})",
    )
    p.add_argument(
        "--memory-budget",
        help=f"memory for one forward pass, e.g. 2G or 512M; images that would need more are "
        f"translated in tiles (default: ${BUDGET_ENV} or a quarter of the free memory)",
    )
    add_reference_flags(p)
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


def output_path(out: Path, source: Path, channels: int, tag: str = "") -> Path:
    """The result's file: .npy and TIFF keep their format, others become PNG (.npy past 4 ch).

    `tag` follows the stem (`_s3`: the fourth style of a multimodal model).
    """
    suffix = source.suffix.lower()
    if suffix not in (".npy", *TIFF_SUFFIXES):
        suffix = ".png" if channels <= 4 else ".npy"
    return out / f"{source.stem}{tag}{suffix}"


def styled(translator: Translator, args: argparse.Namespace) -> list[tuple[str, Translator]]:
    """(file tag, translator) per output of each input: one, or one per --styles code."""
    if args.styles is not None and args.style_from:
        raise ConfigError("--styles and --style-from exclude each other: choose one")
    if args.style_from:
        example = Path(args.style_from)
        if not example.is_file():
            raise DataError(f"--style-from {example} does not exist")
        pixels = to_tensor(read_image(example))
        x = match_channels(pixels, translator.out_channels, str(example), "the style example")
        return [("", with_style(translator, encode_style(translator, x)))]
    if args.styles is None:
        return [("", translator)]
    codes = random_styles(translator, args.styles, args.seed)
    return [(f"_s{k}", with_style(translator, code)) for k, code in enumerate(codes)]


def check_outputs(files: list[Path], out: Path, channels: int, tag: str = "") -> list[Path]:
    """The output file of each input; a DataError when one would overwrite an input or another."""
    inputs = {f.resolve(): f for f in files}
    seen: dict[Path, Path] = {}
    targets = []
    for f in files:
        target = output_path(out, f, channels, tag)
        real = target.resolve()
        if real in inputs:
            raise DataError(
                f"--output {out}: the result of {f} would overwrite the input {inputs[real]}; "
                "choose an output folder outside --input"
            )
        if real in seen:
            raise DataError(
                f"{f} and {seen[real]} would both be written to {target}; rename one of them"
            )
        seen[real] = f
        targets.append(target)
    return targets


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise DataError("--batch-size must be at least 1")
    max_pixels = None if args.max_pixels is None else int(args.max_pixels)
    pixel_limit(max_pixels)  # a bad --max-pixels fails before the model loads
    budget = (
        None if args.memory_budget is None else parse_bytes(args.memory_budget, "--memory-budget")
    )
    if args.engine == "onnx":
        if args.styles is not None or args.style_from:
            raise ConfigError(
                "--styles/--style-from need --engine torch: an exported graph has one style"
            )
        if args.compile:
            raise DataError("--compile applies to --engine torch; onnxruntime optimises on its own")
        exported = load_generator(args.checkpoint, args.direction, "cpu", "fp32")
        translator = onnx_engine(exported, args.device)
    else:
        translator = load_generator(
            args.checkpoint,
            args.direction,
            args.device,
            args.precision,
            arch=args.arch,
            norm=args.norm,
            dropout=args.dropout,
            tile=args.tile,
            overlap=args.overlap,
            compile=args.compile,
        )
    translator.memory_budget = budget
    translator.ensemble = args.ensemble
    if translator.device.type == "cpu":
        reuse_freed_memory()  # a one-shot command: keeping freed memory costs nothing here
    outputs = styled(translator, args)  # bad style options fail before any image is read
    files = input_files(args.input)
    out = Path(args.output)
    targets = {tag: check_outputs(files, out, translator.out_channels, tag) for tag, _ in outputs}
    out.mkdir(parents=True, exist_ok=True)
    done, skipped = 0, []
    with bar(len(files) * len(outputs), "translate") as progress:
        # a batch at a time, read -> translate -> write: memory holds one batch of images
        for k in range(0, len(files), args.batch_size):
            images, jobs = [], []
            for i in range(k, min(k + args.batch_size, len(files))):
                f = files[i]
                try:
                    pixels = read_image(f, max_pixels)
                    x = match_channels(
                        to_tensor(pixels), translator.in_channels, str(f), "the model input"
                    )
                except DataError as e:
                    if not args.skip_bad:
                        raise DataError(f"{e} (use --skip-bad to skip such files)") from e
                    log.warning("skipping %s", e)
                    skipped.append(f)
                    progress.update(len(outputs))
                    continue
                images.append(x)
                jobs.append((i, pixels.dtype))  # results keep the input's bit depth
                del pixels
            for tag, styled_translator in outputs:
                results = translate(
                    styled_translator, images, args.batch_size, args.fit, progress.update
                )
                for (i, dtype), y in zip(jobs, results, strict=True):
                    save_image(y, targets[tag][i], dtype)
            del images
            done += len(jobs)
    print(
        f"translated {done} image(s) into {out}"
        + (f" in {len(outputs)} styles each" if len(outputs) > 1 else "")
        + (f"; skipped {len(skipped)}" if skipped else "")
    )
    return 0
