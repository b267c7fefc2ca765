"""From the aligned layout to the unaligned (CycleGAN) one: shuffled, renumbered trainA/ trainB/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def derangement_orders(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded orders of range(n) that never put the same index at the same position."""
    rng = np.random.default_rng(seed)
    order_a, order_b = rng.permutation(n), rng.permutation(n)
    for k in range(n if n > 1 else 0):
        if order_a[k] == order_b[k]:
            # Swapping with the next slot fixes k without a new clash: indices are unique.
            j = (k + 1) % n
            order_b[k], order_b[j] = order_b[j], order_b[k]
    return order_a, order_b


def unpair(
    in_dir: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    fmt: str = "png",
    overwrite: bool = False,
    track: Track = untracked,
) -> Report:
    """Write OUT/trainA, OUT/trainB (halves shuffled apart); other splits stay paired."""
    suffix = output_suffix(fmt)
    in_root = existing_folder(in_dir, "input folder")
    found = splits(in_root)
    if "" in found:
        train, paired = in_root, {}
    elif "train" in found:
        train, paired = found["train"], {k: v for k, v in found.items() if k != "train"}
    else:
        raise DataError(
            f"{in_root} has subfolders {', '.join(found)} but no train/; unpair shuffles "
            "train/ and keeps the other splits paired"
        )
    report = Report("unpair", Path(out))
    named = by_stem(image_files(train))
    for dup in named.duplicates:
        report.skip("duplicate name", relative(dup, in_root))
    files = list(named.by_stem.values())
    if len(files) < 2:
        raise DataError(f"{train} has {len(files)} usable image(s); unpairing needs at least 2")
    require_aligned(files, in_root, "unpair")
    order_a, order_b = derangement_orders(len(files), seed)
    slot_a = {int(i): k for k, i in enumerate(order_a)}
    slot_b = {int(i): k for k, i in enumerate(order_b)}
    digits = max(5, len(str(len(files) - 1)))
    # Each job: (output split, file, name of its A half, name of its B half).
    jobs = [
        ("train", f, f"{slot_a[i]:0{digits}d}", f"{slot_b[i]:0{digits}d}")
        for i, f in enumerate(files)
    ]
    for name, folder in paired.items():
        sub = by_stem(image_files(folder))
        for dup in sub.duplicates:
            report.skip("duplicate name", relative(dup, in_root))
        require_aligned(list(sub.by_stem.values()), in_root, "unpair")
        jobs.extend((name, f, f.stem, f.stem) for f in sub.by_stem.values())
    subdirs = ["trainA", "trainB"] + [s + x for s in paired for x in ("", "A", "B")]
    root = prepare_output(out, [in_root], subdirs, overwrite)
    for name, f, name_a, name_b in track(jobs):
        img = read_or_skip(f, in_root, report)
        if img is None:
            continue
        w, h = img.size
        if w % 2:
            report.skip("odd width (not an A|B file)", relative(f, in_root))
            continue
        save(img.crop((0, 0, w // 2, h)), root / f"{name}A" / f"{name_a}{suffix}")
        save(img.crop((w // 2, 0, w, h)), root / f"{name}B" / f"{name_b}{suffix}")
        report.wrote(f"{name}A")
        report.wrote(f"{name}B")
        if name != "train":  # the aligned copy lets `pixmorph evaluate` score a translation
            save(img, root / name / f"{f.stem}{suffix}")
            report.wrote(name)
    report.notes.append(f"trainA/ and trainB/ are renumbered in two seeded orders (seed {seed})")
    return report
