"""Super-resolution quality on Set5 and Set14: Y-channel PSNR/SSIM of a model next to bicubic.

python benchmarks/sr_set5_set14.py facades-photos OUT_DIR     # training data: facade photos
python benchmarks/sr_set5_set14.py evaluate RUN [--sets ../shared/data/sr]

`facades-photos` writes the photo (left) halves of ../shared/data/facades/train as PNGs: a folder
of natural HR images that is not Set5/Set14. `evaluate` prints a Markdown table of the bicubic
baseline and the model on each set (x scale of the checkpoint, `scale` px border, 8-bit Y).
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

from pixmorph.data.aligned import split_pair
from pixmorph.data.images import list_images, open_image
from pixmorph.evaluation.paired import evaluate_paired
from pixmorph.inference.loading import load_generator
from pixmorph.methods.registry import get_method

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def facades_photos(out: Path, source: Path) -> None:
    """Write the photo halves of an aligned folder as PNG files."""
    out.mkdir(parents=True, exist_ok=True)
    files = list_images(source)
    for f in files:
        split_pair(open_image(f))[0].save(out / f"{f.stem}.png")
    print(f"wrote {len(files)} photos to {out}")


def evaluate(run: str, sets: Path, names: list[str], tile: int | None) -> None:
    """Evaluate a checkpoint on each named HR folder under `sets`; print a Markdown table."""
    translator = load_generator(run, device="cpu", tile=tile)
    cfg = translator.config
    method_cls = get_method(cfg.method)
    extra, baseline = partial(method_cls.eval_metrics, cfg), method_cls.eval_baseline(cfg)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        dataset = method_cls.make_dataset(cfg, train=False, root=str(sets / name))
        s = evaluate_paired(
            translator, dataset, batch_size=1, extra_metrics=extra, baseline=baseline
        )
        b, m = s["baseline"]["mean"], s["mean"]
        rows.append(
            f"| {name} | {b['psnr_y']:.2f} / {b['ssim_y']:.4f} | {m['psnr_y']:.2f} / "
            f"{m['ssim_y']:.4f} | {m['psnr_y'] - b['psnr_y']:+.2f} |"
        )
        print(f"{name}: {s['count']} images in {time.perf_counter() - t0:.1f} s")
    scale = cfg.model.scale
    print(f"\n{cfg.method} x{scale}, step {translator.step}: Y channel, {scale} px border\n")
    print("| set | bicubic PSNR / SSIM | model PSNR / SSIM | gain (dB) |")
    print("|---|---|---|---|")
    print("\n".join(rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("facades-photos", help="write facade photos as HR training images")
    f.add_argument("out", type=Path)
    f.add_argument("--source", type=Path, default=SHARED / "facades" / "train")
    e = sub.add_parser("evaluate", help="PSNR/SSIM-Y of a run on Set5 and Set14")
    e.add_argument("run")
    e.add_argument("--sets", type=Path, default=SHARED / "sr")
    e.add_argument("--names", default="Set5,Set14")
    e.add_argument("--tile", type=int, help="tile size in LR px (default: the model's)")
    args = p.parse_args()
    if args.cmd == "facades-photos":
        facades_photos(args.out, args.source)
    else:
        evaluate(args.run, args.sets, args.names.split(","), args.tile)


if __name__ == "__main__":
    main()
