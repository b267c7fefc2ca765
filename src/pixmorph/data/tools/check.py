"""Checking a dataset folder before training: counts, sizes, modes, bit depths and problems."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from pixmorph.data.tools.files import (
    by_stem,
    decode_file,
    existing_folder,
    image_files,
    other_files,
    relative,
    splits,
)
from pixmorph.data.tools.outcome import SHOWN, Track, untracked
from pixmorph.errors import DataError

MODES = ("aligned", "unaligned", "single")
UNALIGNED_REQUIRED = ("trainA", "trainB")
UNALIGNED_OPTIONAL = ("testA", "testB", "valA", "valB")
UNALIGNED_PAIRED = ("test", "val")  # aligned copies of the test pairs, as `unpair` writes
_MODE_BITS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}


def bit_depth(img: Image.Image, path: Path) -> int:
    """Bits per sample as stored in the file (16 for 16-bit PNG/TIFF even when read as 8)."""
    if img.format == "PNG":
        # Pillow reads 16-bit colour PNGs as 8-bit RGB; the header byte says what is stored.
        with open(path, "rb") as f:
            header = f.read(25)
        if len(header) == 25 and header[12:16] == b"IHDR":
            return header[24]
    if img.format == "TIFF":
        bits = img.tag_v2.get(258)  # BitsPerSample
        if bits:
            return int(max(bits) if isinstance(bits, tuple) else bits)
    return _MODE_BITS.get(img.mode, 8)


@dataclass
class FolderStats:
    """What one image folder holds."""

    name: str
    images: int = 0
    readable: int = 0
    other_files: int = 0
    sizes: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    bits: Counter[int] = field(default_factory=Counter)


@dataclass
class CheckResult:
    """Per-folder statistics and the problems found, each with the files it concerns."""

    root: Path
    mode: str
    folders: list[FolderStats] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, kind: str, name: str) -> None:
        self.problems.setdefault(kind, []).append(name)

    def table(self) -> list[str]:
        """Aligned text columns: one row per folder, then the problems with example files."""
        head = ("folder", "images", "readable", "sizes", "modes", "bits")
        rows = [head] + [
            (
                f.name or ".",
                str(f.images),
                str(f.readable),
                _summarise(f.sizes),
                _summarise(f.modes),
                _summarise(f.bits),
            )
            for f in self.folders
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [f"{self.mode} dataset {self.root}"]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        for kind, names in self.problems.items():
            more = f" ... (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
            lines.append(f"PROBLEM {kind} ({len(names)}): {', '.join(names[:SHOWN])}{more}")
        lines += [f"note: {n}" for n in self.notes]
        n = sum(len(v) for v in self.problems.values())
        lines.append("OK: no problems found" if self.ok else f"{n} problem(s) found")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "mode": self.mode,
            "ok": self.ok,
            "folders": [
                {
                    "name": f.name,
                    "images": f.images,
                    "readable": f.readable,
                    "other_files": f.other_files,
                    "sizes": dict(f.sizes),
                    "modes": dict(f.modes),
                    "bits": {str(k): v for k, v in f.bits.items()},
                }
                for f in self.folders
            ],
            "problems": self.problems,
            "notes": self.notes,
        }


def _summarise(counts: Counter) -> str:
    """`256x256` for one value, `256x256 40, 300x200 2` for a few, `7 kinds (most: ...)` else."""
    if not counts:
        return "-"
    if len(counts) == 1:
        return str(next(iter(counts)))
    common = counts.most_common()
    if len(common) <= 3:
        return ", ".join(f"{k} x{v}" for k, v in common)
    return f"{len(common)} kinds (most: {common[0][0]} x{common[0][1]})"


def _folders(root: Path, mode: str, result: CheckResult) -> dict[str, Path]:
    """The image folders to check for `mode`; layout problems go into `result`."""
    if mode != "unaligned":
        found = splits(root)
        if "" in found:
            nested = [d.name for d in root.iterdir() if d.is_dir() and image_files(d)]
            if nested:
                result.notes.append(
                    f"{root} holds images itself, so its subfolders {', '.join(sorted(nested))}"
                    " are not part of the set"
                )
        else:
            empty = [
                d.name
                for d in root.iterdir()
                if d.is_dir() and d.name not in found and not d.name.startswith(".")
            ]
            if empty:
                result.notes.append(f"subfolders without images: {', '.join(sorted(empty))}")
        return found
    found = {}
    for name in UNALIGNED_REQUIRED + UNALIGNED_OPTIONAL + UNALIGNED_PAIRED:
        folder = root / name
        if folder.is_dir():
            found[name] = folder
        elif name in UNALIGNED_REQUIRED:
            result.problem("missing folder", f"{name}/")
    for a, b in (("testA", "testB"), ("valA", "valB")):
        if (a in found) != (b in found):
            result.problem("missing folder", f"{b if a in found else a}/")
    if image_files(root):
        result.notes.append(f"images directly in {root} are not part of an unaligned set")
    return found


def check(root: str | Path, mode: str = "aligned", *, track: Track = untracked) -> CheckResult:
    """Scan every image of a dataset folder (decoding it fully) and list what is wrong."""
    if mode not in MODES:
        raise DataError(f"check mode {mode!r}: choose one of {', '.join(MODES)}")
    root = existing_folder(root, "dataset folder")
    result = CheckResult(root, mode)
    folders = _folders(root, mode, result)
    jobs: list[tuple[FolderStats, Path, str]] = []  # (folder stats, file, layout of its folder)
    for name, folder in folders.items():
        stats = FolderStats(name)
        result.folders.append(stats)
        files = image_files(folder)
        stats.images, stats.other_files = len(files), len(other_files(folder))
        if not files:
            result.problem("no images", f"{name}/")
        for dup in by_stem(files).duplicates:
            result.problem("duplicate name (same stem, other extension)", relative(dup, root))
        layout = "aligned" if mode == "aligned" or name in UNALIGNED_PAIRED else "single"
        jobs.extend((stats, f, layout) for f in files)
        if stats.other_files:
            result.notes.append(f"{stats.other_files} non-image file(s) in {name or '.'}/ ignored")
    for stats, f, layout in track(jobs):
        try:
            img = decode_file(f)
        except DataError as e:
            result.problem("unreadable or corrupt", f"{relative(f, root)} ({e.__cause__ or e})")
            continue
        stats.readable += 1
        w, h = img.size
        stats.sizes[f"{w}x{h}"] += 1
        stats.modes[img.mode] += 1
        stats.bits[bit_depth(img, f)] += 1
        if layout == "aligned" and w != 2 * h:
            result.problem("aligned width != 2 x height", f"{relative(f, root)} ({w}x{h})")
    return result
