"""A checkpoint that holds code is refused with pixmorph's own message, never a hint to unpickle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pixmorph.checkpoint import load_file, read_state_dict
from pixmorph.cli import main
from pixmorph.errors import CheckpointError
from pixmorph.evaluation.inception_weights import read_inception_state as read_inception
from pixmorph.nets.perceptual import load_vgg19


class Payload:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo unpickled",))


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.pt"
    torch.save({"model": {"w": torch.ones(2)}, "extra": Payload()}, path)
    return path


def check_message(text: str, path: Path) -> None:
    assert str(path) in text and "refused" in text
    assert "system" in text  # names what the file asked for
    assert "weights_only" not in text and "False" not in text  # no advice to turn the check off


def test_load_file_refuses_with_its_own_message(hostile: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_file(hostile)
    check_message(str(err.value), hostile)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # torch's hint dropped


def test_other_weight_readers_refuse_the_same_way(hostile: Path) -> None:
    for read in (read_inception, load_vgg19, lambda p: read_state_dict(p, "weights")):
        with pytest.raises(CheckpointError) as err:
            read(hostile)
        check_message(str(err.value), hostile)


def test_cli_exits_2_with_one_line(hostile: Path, tmp_path: Path, capsys) -> None:
    img = tmp_path / "in.png"
    img.write_bytes(b"")
    code = main(["translate", "--checkpoint", str(hostile), "--input", str(img), "--output", "o"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    check_message(err, hostile)


def test_truncated_file_is_named_as_broken(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(100)}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_file(cut)
    assert str(cut) in str(err.value)
