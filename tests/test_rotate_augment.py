"""data.rotate: random quarter turns on top of the flip, the same for every image of a sample."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

from pixmorph.data import synth
from pixmorph.data.hr import HRDataset, bicubic_resize
from pixmorph.data.images import from_tensor, to_tensor
from pixmorph.data.load_options import LoadOptions
from pixmorph.data.transforms import draw_augment
from pixmorph.errors import ConfigError
from pixmorph.methods.pix2pix import Pix2Pix


def test_flip_and_turns_give_all_eight_orientations_evenly() -> None:
    rng = np.random.default_rng(0)
    draws = Counter((a.flip, a.turns) for a in (draw_augment(rng, True, True) for _ in range(8000)))
    assert set(draws) == {(f, t) for f in (False, True) for t in range(4)}
    assert all(abs(n / 8000 - 1 / 8) < 0.02 for n in draws.values())
    # without rotate: no turns, and a sample's crop and flip draws are those of older runs
    for seed in range(50):
        plain = draw_augment(np.random.default_rng(seed), True)
        turned = draw_augment(np.random.default_rng(seed), True, True)
        assert plain.turns == 0
        assert (plain.crop_x, plain.crop_y, plain.flip) == (
            turned.crop_x,
            turned.crop_y,
            turned.flip,
        )


def test_hr_crops_turn_and_their_lr_inputs_follow(tmp_path: Path) -> None:
    folder = tmp_path / "hr"
    folder.mkdir()
    synth.render_detail(np.random.default_rng(1), 64).save(folder / "x.png")
    plain = HRDataset(folder, scale=4, options=LoadOptions(crop_size=32, seed=2))
    turned = HRDataset(folder, scale=4, options=LoadOptions(crop_size=32, seed=2, rotate=True))
    seen = set()
    for key in range(24):
        turns = turned.opt.augment(turned.rng(key)).turns
        seen.add(turns)
        hr, want = turned[key]["b"], plain[key]["b"]
        torch.testing.assert_close(hr, want.rot90(turns, (-2, -1)), atol=0, rtol=0)
        lr = bicubic_resize(np.ascontiguousarray(from_tensor(hr)), (8, 8))
        torch.testing.assert_close(turned[key]["a"], to_tensor(lr), atol=0, rtol=0)
    assert seen == {0, 1, 2, 3}


def test_paired_images_turn_together(paired_root: Path, tmp_path: Path) -> None:
    plain_cfg = tiny_config(paired_root, tmp_path)
    cfg = tiny_config(paired_root, tmp_path, data={"rotate": True})
    plain, turned = Pix2Pix.make_dataset(plain_cfg, True), Pix2Pix.make_dataset(cfg, True)
    seen = set()
    for key in range(16):
        turns = turned.opt.augment(turned.rng(key)).turns
        seen.add(turns)
        for side in ("a", "b"):  # A and B turned alike: still aligned
            want = plain[key][side].rot90(turns, (-2, -1))
            torch.testing.assert_close(turned[key][side], want, atol=0, rtol=0)
    assert len(seen) > 1
    # evaluation reads upright images
    held_out = Pix2Pix.make_dataset(cfg, False)
    plain_out = Pix2Pix.make_dataset(plain_cfg, False)
    torch.testing.assert_close(held_out[0]["a"], plain_out[0]["a"])


def test_rotate_needs_square_crops(paired_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(paired_root, tmp_path, data={"rotate": True, "preprocess": "scale_width"})
    with pytest.raises(ConfigError, match=r"data\.rotate.*scale_width"):
        Pix2Pix.make_dataset(cfg, True)
