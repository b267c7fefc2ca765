"""Between separate A/ and B/ folders and the aligned A|B layout: combine and split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pixmorph.data.images import convert_mode
from pixmorph.data.tools.files import (
    by_stem,
    existing_folder,
    image_files,
    read_or_skip,
    relative,
    require_aligned,
    splits,
)
from pixmorph.data.tools.outcome import Report, Track, untracked
from pixmorph.data.tools.output import output_suffix, prepare_output, save
from pixmorph.errors import DataError

RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}
KEEP_MODES = ("L", "RGB", "RGBA", "I;16", "I")  # modes both halves may share unconverted


@dataclass(frozen=True)
class _Pair:
    split: str
    stem: str
    a: Path
    b: Path


def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
    """One image holding `a` on the left and `b` on the right (same height)."""
    if a.mode != b.mode or a.mode not in KEEP_MODES:
        channels = 4 if "A" in a.mode + b.mode else 3  # keep transparency when either has it
        a, b = convert_mode(a, channels), convert_mode(b, channels)
    both = Image.new(a.mode, (a.width + b.width, a.height))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, 0))
    return both


def square_note(n: int) -> str:
    """The warning for outputs the aligned loader will refuse."""
    return (
        f"{n} output file(s) have non-square halves; pixmorph's aligned loader expects "
        "width = 2 x height, so resize or crop the inputs to squares first"
    )


def _layouts(a_root: Path, b_root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    a_splits, b_splits = splits(a_root), splits(b_root)
    if ("" in a_splits) != ("" in b_splits):
        flat, nested = (a_root, b_root) if "" in a_splits else (b_root, a_root)
        raise DataError(
            f"{flat} holds images directly but {nested} holds them in subfolders "
            f"({', '.join(splits(nested))}); give two folders of the same layout"
        )
    return a_splits, b_splits


def _plan_combine(a_root: Path, b_root: Path, report: Report) -> list[_Pair]:
    a_splits, b_splits = _layouts(a_root, b_root)
    pairs: list[_Pair] = []
    for name in sorted(set(a_splits) | set(b_splits)):
        if name not in b_splits or name not in a_splits:
            side = "A" if name in a_splits else "B"
            report.skip(f"split only in {side}", name)
            continue
        a_named = by_stem(image_files(a_splits[name]))
        b_named = by_stem(image_files(b_splits[name]))
        for dup in a_named.duplicates:
            report.skip("duplicate name in A", relative(dup, a_root))
        for dup in b_named.duplicates:
            report.skip("duplicate name in B", relative(dup, b_root))
        for stem, a in a_named.by_stem.items():
            b = b_named.by_stem.get(stem)
            if b is None:
                report.skip("no match in B", relative(a, a_root))
            else:
                pairs.append(_Pair(name, stem, a, b))
        for stem, b in b_named.by_stem.items():
            if stem not in a_named.by_stem:
                report.skip("no match in A", relative(b, b_root))
    return pairs


def combine(
    a_dir: str | Path,
    b_dir: str | Path,
    out: str | Path,
    *,
    resize: str = "none",
    fmt: str = "png",
    overwrite: bool = False,
    track: Track = untracked,
) -> Report:
    """Pair A_DIR/x and B_DIR/x by name into OUT/x, A on the left and B on the right."""
    if resize not in ("none", *RESAMPLE):
        raise DataError(f"resize={resize!r}: choose none, {' or '.join(RESAMPLE)}")
    suffix = output_suffix(fmt)
    a_root, b_root = existing_folder(a_dir, "A folder"), existing_folder(b_dir, "B folder")
    report = Report("combine", Path(out))
    pairs = _plan_combine(a_root, b_root, report)
    root = prepare_output(out, [a_root, b_root], sorted({p.split for p in pairs}), overwrite)
    not_square = 0
    for pair in track(pairs):
        a = read_or_skip(pair.a, a_root, report)
        b = read_or_skip(pair.b, b_root, report)
        if a is None or b is None:
            continue
        if a.size != b.size:
            if resize == "none":
                report.skip("sizes differ (pass --resize)", relative(pair.a, a_root))
                continue
            b = b.resize(a.size, RESAMPLE[resize])
        not_square += a.width != a.height
        save(side_by_side(a, b), root / pair.split / f"{pair.stem}{suffix}")
        report.wrote(pair.split)
    if not_square:
        report.notes.append(square_note(not_square))
    return report


def split(
    in_dir: str | Path,
    out: str | Path,
    *,
    fmt: str = "png",
    overwrite: bool = False,
    track: Track = untracked,
) -> Report:
    """Cut aligned IN/x into OUT/A/x (left half) and OUT/B/x (right half)."""
    suffix = output_suffix(fmt)
    in_root = existing_folder(in_dir, "input folder")
    report = Report("split", Path(out))
    jobs: list[tuple[str, Path]] = []
    for name, folder in splits(in_root).items():
        named = by_stem(image_files(folder))
        for dup in named.duplicates:
            report.skip("duplicate name", relative(dup, in_root))
        jobs.extend((name, f) for f in named.by_stem.values())
    require_aligned([f for _, f in jobs], in_root, "split")
    subdirs = sorted({str(Path(side) / name) for name, _ in jobs for side in "AB"})
    root = prepare_output(out, [in_root], subdirs, overwrite)
    for name, f in track(jobs):
        img = read_or_skip(f, in_root, report)
        if img is None:
            continue
        w, h = img.size
        if w % 2:
            report.skip("odd width (not an A|B file)", relative(f, in_root))
            continue
        save(img.crop((0, 0, w // 2, h)), root / "A" / name / f"{f.stem}{suffix}")
        save(img.crop((w // 2, 0, w, h)), root / "B" / name / f"{f.stem}{suffix}")
        report.wrote(str(Path("A") / name))
        report.wrote(str(Path("B") / name))
    return report
