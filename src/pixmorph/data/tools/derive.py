"""Aligned pairs made from single photos: A is computed from the photo, B is the photo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from pixmorph.data.tools.files import (
    by_stem,
    existing_folder,
    image_files,
    read_or_skip,
    relative,
    splits,
)
from pixmorph.data.tools.outcome import Report, Track, untracked
from pixmorph.data.tools.output import output_suffix, prepare_output, save
from pixmorph.data.tools.pairs import side_by_side, square_note


class Skip(Exception):
    """Raised by a derive function for a photo it cannot use; the reason goes in the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Derive = Callable[[Image.Image], tuple[Image.Image, Image.Image]]  # photo -> (A, B)


def write_derived(
    tool: str,
    in_dir: str | Path,
    out: str | Path,
    derive: Derive,
    *,
    fmt: str = "png",
    overwrite: bool = False,
    track: Track = untracked,
) -> Report:
    """Write OUT/[split/]x as derive(IN/[split/]x) side by side, mirroring IN's splits."""
    suffix = output_suffix(fmt)
    in_root = existing_folder(in_dir, "input folder")
    report = Report(tool, Path(out))
    jobs: list[tuple[str, Path]] = []
    for name, folder in splits(in_root).items():
        named = by_stem(image_files(folder))
        for dup in named.duplicates:
            report.skip("duplicate name", relative(dup, in_root))
        jobs.extend((name, f) for f in named.by_stem.values())
    root = prepare_output(out, [in_root], sorted({name for name, _ in jobs}), overwrite)
    not_square = 0
    for name, f in track(jobs):
        img = read_or_skip(f, in_root, report)
        if img is None:
            continue
        try:
            a, b = derive(img)
        except Skip as s:
            report.skip(s.reason, relative(f, in_root))
            continue
        not_square += a.width != a.height
        save(side_by_side(a, b), root / name / f"{f.stem}{suffix}")
        report.wrote(name)
    if not_square:
        report.notes.append(square_note(not_square))
    return report
