"""Typed config: recipes, overrides, resolution of `auto`, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pixmorph.cli import main
from pixmorph.config import parse_overrides, to_dict
from pixmorph.errors import ConfigError
from pixmorph.methods.settings import build_config


def test_overrides_are_typed():
    tree = parse_overrides(["train.steps=10", "train.lr=1e-4", "data.flip=false", "out=x"])
    cfg = build_config({**tree, "data": {**tree["data"], "crop_size": 64}})
    assert cfg.train.steps == 10 and isinstance(cfg.train.lr, float) and cfg.train.lr == 1e-4
    assert cfg.data.flip is False and cfg.out == "x"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"train\.stepz.*valid keys under train:.*steps"):
        build_config(parse_overrides(["train.stepz=3"]))


def test_bad_choice_lists_choices():
    with pytest.raises(ConfigError, match="model.gan_mode.*'vanilla', 'lsgan', 'hinge', 'wgangp'"):
        build_config(parse_overrides(["model.gan_mode=nope"]))
    with pytest.raises(ConfigError, match="data.direction"):
        build_config(parse_overrides(["data.direction=up"]))


def test_bad_types_are_rejected():
    with pytest.raises(ConfigError, match="train.steps: expected an integer"):
        build_config(parse_overrides(["train.steps=ten"]))
    with pytest.raises(ConfigError, match="data.flip: expected true or false"):
        build_config(parse_overrides(["data.flip=3"]))
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.steps"])


def test_unknown_method_lists_methods():
    with pytest.raises(ConfigError, match="unknown method 'nope'.*pix2pix"):
        build_config({"method": "nope"})


@pytest.mark.parametrize(
    "size,arch",
    [
        (256, "unet_256"),
        (128, "unet_128"),
        (64, "unet_64"),
        (32, "unet_32"),
        (512, "unet_256"),
        (96, "unet_32"),
    ],
)
def test_auto_generator_fits_the_size(size: int, arch: str):
    cfg = build_config({"data": {"crop_size": size}})
    assert cfg.model.generator.arch == arch


def test_named_generator_that_cannot_take_the_size():
    with pytest.raises(ConfigError, match="unet_256 cannot take the crop size 128.*unet_128"):
        build_config({"data": {"crop_size": 128}, "model": {"generator": {"arch": "unet_256"}}})
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_config({"data": {"crop_size": 40}})


def test_resolved_config_round_trips(tmp_path: Path):
    cfg = build_config({"data": {"crop_size": 64}, "train": {"steps": 7}})
    again = build_config(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    assert to_dict(again) == to_dict(cfg)


def test_dry_run_prints_the_resolved_config(tmp_path: Path, capsys: pytest.CaptureFixture):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  steps: 99\nmodel:\n  lambda_l1: 50\n")
    code = main(
        [
            "train",
            str(recipe),
            "--size",
            "64",
            "--direction",
            "BtoA",
            "--batch-size",
            "3",
            "train.lr=0.001",
            "--dry-run",
        ]
    )
    assert code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["steps"] == 99 and printed["train"]["batch_size"] == 3
    assert printed["train"]["lr"] == 0.001 and printed["model"]["lambda_l1"] == 50.0
    assert printed["data"]["crop_size"] == 64 and printed["data"]["load_size"] == 72
    assert printed["model"]["generator"]["arch"] == "unet_64"
    assert printed["data"]["direction"] == "BtoA"


def test_cli_reports_config_errors(capsys: pytest.CaptureFixture):
    assert main(["train", "model.generator.norm=group", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "model.generator.norm" in err and "'batch', 'syncbatch', 'instance', 'none'" in err
    assert main(["train", "missing.yaml", "--dry-run"]) == 2
    assert "recipe missing.yaml does not exist" in capsys.readouterr().err
