"""Quality in a CPU budget: time-budgeted runs, the generator average, the on-the-fly split."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from torch import nn

from pixmorph.data import synth
from pixmorph.data.val_split import held_out_names
from pixmorph.errors import ConfigError
from pixmorph.evaluation.run_report import _series, build_report
from pixmorph.inference.loading import load_method
from pixmorph.training.budget import RunClock, budget_decay
from pixmorph.training.ema import GeneratorEMA
from pixmorph.training.trainer import Trainer


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# --- time budget -------------------------------------------------------------------------------
class FakeClock:
    """A settable clock for RunClock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_schedule_reaches_zero_exactly_when_the_clock_stops():
    fake = FakeClock()
    clock = RunClock(budget_s=10.0, clock=fake)
    factor = budget_decay(clock.progress, decay_start=0.5)
    clock.start()
    lrs, done = [], []
    clock.tick()  # the first step: its interval holds the set-up, so it is not measured
    for _ in range(40):
        fake.now += 1.0 if fake.now < 4 else 0.5  # the machine speeds up half way
        clock.tick()
        lrs.append(factor(0))
        done.append(clock.done())
    stop = done.index(True)
    assert lrs[stop] == 0.0 and all(lr > 0 for lr in lrs[:stop])
    assert lrs[:3] == [1.0, 1.0, 1.0]  # before decay_start of the budget
    assert 9.0 <= fake.now - 0.5 * (len(lrs) - 1 - stop) <= 10.0


def test_budget_clock_carries_elapsed_across_resume():
    fake = FakeClock()
    clock = RunClock(budget_s=60.0, clock=fake)
    clock.start()
    fake.now = 25.0
    state = clock.state_dict()
    again = RunClock(budget_s=60.0, clock=fake)
    again.load_state_dict(state)
    again.start()
    fake.now = 30.0
    assert again.elapsed() == pytest.approx(30.0)


@pytest.fixture()
def warm() -> None:
    """Pay the process's one-time costs (the first Adam imports torch's compiler, ~5 s here)."""
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])


def test_time_budgeted_run_stops_within_its_budget(paired_root, tmp_path, warm):
    budget_s = 4.0  # seconds: long enough that one slow step on a shared CPU stays inside 10 %
    cfg = tiny_config(
        paired_root,
        tmp_path / "run",
        train={
            "time_budget": budget_s / 60,
            "steps": 1,  # unused under a budget
            "log_every": 5,
            "sample_every": 0,
            "checkpoint_every": 10_000,
        },
    )
    t0 = time.perf_counter()
    Trainer(cfg).fit()
    wall = time.perf_counter() - t0
    assert abs(wall - budget_s) <= 0.1 * budget_s
    records = _records(tmp_path / "run")
    last = records[-1]
    assert last["step"] > 10  # it ran steps until the time was up, not train.steps
    assert last["lr_g"] == 0.0 and last["lr_d"] == 0.0  # the schedule ended with the time
    assert all("elapsed_s" in r for r in records)
    assert last["elapsed_s"] == pytest.approx(wall, abs=0.1 * budget_s)
    ckpt = torch.load(tmp_path / "run/checkpoints/latest.pt", weights_only=True)
    assert ckpt["step"] == last["step"]
    assert ckpt["clock"]["elapsed_s"] <= budget_s * 1.1


def test_time_budgeted_resume_continues_the_remaining_budget(paired_root, tmp_path, warm):
    run = tmp_path / "run"
    budget = {"log_every": 1, "sample_every": 0, "checkpoint_every": 10_000}
    cfg = tiny_config(paired_root, run, train={"time_budget": 1.5 / 60, **budget})
    Trainer(cfg).fit()
    first = _records(run)[-1]
    t0 = time.perf_counter()
    Trainer.resume(run, {"train": {"time_budget": 3.0 / 60}}).fit()
    wall = time.perf_counter() - t0
    records = _records(run)
    assert records[-1]["step"] > first["step"]
    # only the remaining 1.5 s ran (the run's own clock says so below); the wall time adds
    # building and loading, which a loaded machine stretches, so it is bounded loosely
    assert 1.5 * 0.8 <= wall < 3.0 * 0.9
    assert records[-1]["elapsed_s"] == pytest.approx(3.0, rel=0.1)


# --- generator average -------------------------------------------------------------------------
class _Tiny(nn.Module):
    """A stand-in method with one generator and one unrelated network."""

    directions = ("AtoB",)

    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Linear(2, 2)
        self.d = nn.Linear(2, 1)
        self.cfg = None

    def inference_generator(self, direction=None):
        return type("G", (), {"module": self.g, "style_encoder": None})()

    named_parameters = nn.Module.named_parameters


def test_ema_equals_a_hand_computed_average():
    method = _Tiny()
    ema = GeneratorEMA(method, half_life_images=4.0, images_per_step=2)  # beta = 0.5 ** 0.5
    assert set(ema.average) == {"g.weight", "g.bias"}  # the generator only, by its own names
    beta = 0.5**0.5
    w0 = method.g.weight.detach().clone()
    steps = [torch.full_like(w0, v) for v in (1.0, -2.0, 3.0)]
    expect = w0.clone()
    for i, w in enumerate(steps, 1):
        with torch.no_grad():
            method.g.weight.copy_(w)
        ema.update(i)
        expect = beta * expect + (1 - beta) * w
    assert torch.allclose(ema.average["g.weight"], expect, atol=1e-6)
    live = method.g.weight.detach().clone()
    with ema.swapped():
        assert torch.allclose(method.g.weight, expect, atol=1e-6)
    assert torch.equal(method.g.weight, live)  # the live weights come back


def test_ema_every_k_steps_folds_k_steps_of_decay_and_flushes_before_reads():
    method = _Tiny()
    ema = GeneratorEMA(method, half_life_images=4.0, images_per_step=2, every=3)
    beta = 0.5**0.5
    w0 = method.g.weight.detach().clone()
    expect = w0.clone()
    for i, v in enumerate((1.0, -2.0, 3.0, 5.0), 1):
        with torch.no_grad():
            method.g.weight.fill_(v)
        ema.update(i)
        if i == 2:  # nothing folded yet
            assert torch.equal(ema.average["g.weight"], w0)
    expect = beta**3 * expect + (1 - beta**3) * 3.0  # step 3 folds three steps' decay at once
    assert torch.allclose(ema.average["g.weight"], expect, atol=1e-6)
    saved = ema.state_dict()["g.weight"]  # reading it folds the pending step 4
    expect = beta * expect + (1 - beta) * 5.0
    assert torch.allclose(saved, expect, atol=1e-6)
    # a loaded average continues from the step the next update names
    ema.load_state_dict({"g.weight": expect.clone(), "g.bias": ema.average["g.bias"].clone()})
    with torch.no_grad():
        method.g.weight.fill_(-1.0)
    ema.update(6)  # a multiple of 3: folds one step (6 - 5)
    assert torch.allclose(ema.average["g.weight"], beta * expect + (1 - beta) * -1.0, atol=1e-6)


def test_ema_is_saved_and_used_for_translation(paired_root, tmp_path):
    run = tmp_path / "run"
    # a constant LR, so a run stopped half way and resumed can match a straight one
    ema = {"ema_half_life": 8.0, "lr_policy": "constant"}
    cfg = tiny_config(paired_root, run, train={**ema, "steps": 6})
    trainer = Trainer(cfg)
    method = trainer.build()
    trainer.fit(method)
    ckpt = torch.load(run / "checkpoints/latest.pt", weights_only=True)
    assert ckpt["ema"] and set(ckpt["ema"]) <= set(ckpt["model"])
    assert all(k.startswith("g.") for k in ckpt["ema"])
    key = next(iter(ckpt["ema"]))
    assert not torch.equal(ckpt["ema"][key], ckpt["model"][key])
    loaded, _ = load_method(run, device="cpu")
    assert torch.equal(loaded.state_dict()[key], ckpt["ema"][key])
    # resume keeps the average: two 3-step halves end where the 6-step run did
    half = tmp_path / "half"
    Trainer(tiny_config(paired_root, half, train={**ema, "steps": 3})).fit()
    Trainer.resume(half, {"train": {"steps": 6}}).fit()
    resumed = torch.load(half / "checkpoints/latest.pt", weights_only=True)
    assert torch.equal(resumed["model"][key], ckpt["model"][key])
    assert torch.equal(resumed["ema"][key], ckpt["ema"][key])


# --- held-out split made on the fly ------------------------------------------------------------
@pytest.fixture(scope="module")
def flat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Paired images in train/ only: no test/ or val/ folder."""
    root = tmp_path_factory.mktemp("flat")
    synth.write_paired(root, n=24, size=32, seed=0, test_fraction=0.0)
    shutil.rmtree(root / "test", ignore_errors=True)
    assert not (root / "test").exists() and not (root / "val").exists()
    return root


def _names(ds) -> set[str]:
    return {Path(f).name for f in ds.images.files}


def test_val_split_is_disjoint_seeded_and_stable(flat_root, tmp_path):
    cfg = tiny_config(flat_root, tmp_path / "run", data={"val_fraction": 0.25})
    train = Trainer(cfg).method_cls.make_dataset(cfg, train=True)
    held = Trainer(cfg).method_cls.make_dataset(cfg, train=False)
    all_files = {p.name for p in (flat_root / "train").iterdir()}
    assert _names(train).isdisjoint(_names(held))
    assert _names(train) | _names(held) == all_files
    assert 2 <= len(_names(held)) <= 12
    names = sorted(all_files)
    assert held_out_names(names, 0.25, 0) == held_out_names(names[::-1], 0.25, 0)
    assert held_out_names(names, 0.25, 0) != held_out_names(names, 0.25, 1)
    # a file added later moves nothing else
    assert held_out_names(names, 0.25, 0) <= held_out_names([*names, "new.png"], 0.25, 0)


def test_val_split_drives_eval_and_survives_resume(flat_root, tmp_path):
    run = tmp_path / "run"
    extra = {"steps": 2, "eval_every": 2, "sample_every": 0}
    cfg = tiny_config(flat_root, run, data={"val_fraction": 0.25}, train=extra)
    Trainer(cfg).fit()
    saved = json.loads((run / "val_split.json").read_text())["held_out"]
    held = Trainer(cfg).method_cls.make_dataset(cfg, train=False)
    assert sorted(Path(n).name for n in saved) == sorted(_names(held))
    assert any("eval_psnr" in r for r in _records(run))
    assert (run / "checkpoints/best.pt").is_file()
    Trainer.resume(run, {"train": {"steps": 4}}).fit()  # the same split: no error
    assert json.loads((run / "val_split.json").read_text())["held_out"] == saved
    with pytest.raises(ConfigError, match="val_split.json"):
        Trainer.resume(run, {"train": {"steps": 6, "seed": 5}}).fit()


def test_report_plots_against_time(paired_root, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(paired_root, run, train={"steps": 3, "sample_every": 0})).fit()
    page = build_report(run, x="time")
    assert page.is_file()
    series = _series(_records(run), "time")
    xs = series["g_l1"][0]
    assert xs == sorted(xs) and xs[-1] > 0 and xs[-1] < 1  # minutes, growing
    assert "elapsed_s" not in series
    with pytest.raises(ConfigError, match="x axis"):
        build_report(run, x="epochs")


# --- KID during training -----------------------------------------------------------------------
class _Pairs(torch.utils.data.Dataset):
    """Paired items whose input is their target: an identity 'model' translates perfectly."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"a": self.images[i], "b": self.images[i], "path": f"{i}.png"}


class _Translate:
    def __init__(self, fn) -> None:
        self.translate = fn


def test_held_out_kid_is_lowest_for_perfect_translations_and_grows_with_errors():
    from pixmorph.evaluation.fid import Realism
    from pixmorph.evaluation.inception_weights import build_feature_net
    from pixmorph.training.held_out import HeldOutEval

    torch.manual_seed(0)
    realism = Realism(build_feature_net("random"), fid=False, kid=True, kid_subset_size=12)
    evaluate = HeldOutEval(_Pairs(12), 4, realism=realism)
    perfect = evaluate(_Translate(lambda a: a))
    noisy = evaluate(_Translate(lambda a: (a + 0.5 * torch.randn_like(a)).clamp(-1, 1)))
    flat = evaluate(_Translate(lambda a: torch.zeros_like(a)))
    # the unbiased estimate of identical sets is at or below 0 (it drops the self-pairs)
    assert perfect["eval_kid"] <= 0 < noisy["eval_kid"] < flat["eval_kid"]
    assert perfect["eval_psnr"] > noisy["eval_psnr"]
    assert "eval_kid" not in HeldOutEval(_Pairs(4), 4)(_Translate(lambda a: a))


def test_eval_kid_in_training_records_and_picks_best(paired_root, tmp_path, monkeypatch):
    import pixmorph.training.held_out as held_out

    loaded = []
    real_build = held_out.build_feature_net

    def stand_in(kind, *args, **kwargs):
        loaded.append(kind)
        return real_build("random")

    monkeypatch.setattr(held_out, "build_feature_net", stand_in)
    run = tmp_path / "run"
    extra = {"steps": 4, "eval_every": 2, "sample_every": 0, "eval_kid": True, "best_metric": "kid"}
    Trainer(tiny_config(paired_root, run, train=extra)).fit()
    assert loaded == ["inception"]  # what a real run loads: the Inception network
    kids = [r["eval_kid"] for r in _records(run) if "eval_kid" in r]
    assert len(kids) == 2 and all(k == k for k in kids)  # two evaluations, no NaN
    best = torch.load(run / "checkpoints/best.pt", weights_only=True)
    assert best["step"] in (2, 4)


def test_val_split_applies_to_the_training_root_only(flat_root, tmp_path):
    # a checkpoint trained with val_fraction, evaluated on another folder, reads all of it
    cfg = tiny_config(flat_root, tmp_path / "run", data={"val_fraction": 0.25})
    method_cls = Trainer(cfg).method_cls
    everything = {p.name for p in (flat_root / "train").iterdir()}
    other = tmp_path / "other"
    shutil.copytree(flat_root / "train", other)
    assert _names(method_cls.make_dataset(cfg, train=False, root=str(other))) == everything
    held = _names(method_cls.make_dataset(cfg, train=False))
    assert held < everything  # the training root itself still gives its held-out part
    same_root = method_cls.make_dataset(cfg, train=False, root=str(flat_root))
    assert _names(same_root) == held
