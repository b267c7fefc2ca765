"""Calibration of `auto` speed settings: picks the faster candidate, caches per CPU, stays off
for short runs, and leaves the run's weights and random state as they were."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from conftest import tiny_config

from pixmorph.methods.registry import get_method
from pixmorph.speed import calibrate
from pixmorph.speed.calibrate import (
    CALIBRATE_MIN_STEPS,
    CpuInfo,
    cache_file,
    read_cpu_info,
    time_candidates,
    wants_calibration,
)
from pixmorph.speed.plan import SpeedPlan, apply_plan
from pixmorph.training import calibration
from pixmorph.training.calibration import calibrate_plan, first_batch, maybe_calibrate
from pixmorph.training.trainer import Trainer, build_method

CPU = torch.device("cpu")
AVX2 = CpuInfo("Test CPU 3", frozenset({"avx2", "fma"}))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    # never the user's cache; precision stays out of the candidates unless a test asks
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(calibration, "cpu_has_native_bf16", lambda: False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FakeClock:
    """A timer that advances only by what the timed candidates 'cost'."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_steps(clock: FakeClock, cost, calls: list[SpeedPlan] | None = None):
    """A StepFactory whose candidates take cost(plan) fake seconds per call."""

    def make(plan: SpeedPlan):
        if calls is not None:
            calls.append(plan)

        def step() -> None:
            clock.now += cost(plan)

        return step

    return make


def test_time_candidates_measures_each_round_robin():
    clock, order = FakeClock(), []

    def cand(name, cost):
        def fn():
            order.append(name)
            clock.now += cost

        return fn

    times = time_candidates({"a": cand("a", 2.0), "b": cand("b", 0.5)}, repeats=3, timer=clock)
    assert times == {"a": 2.0, "b": 0.5}
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed ones, interleaved


@pytest.mark.parametrize("slow_small_maps", [True, False])
def test_calibration_picks_the_faster_candidate(paired_root, tmp_path, slow_small_maps):
    cfg = tiny_config(paired_root, tmp_path)
    clock = FakeClock()

    def cost(plan: SpeedPlan) -> float:
        slow = plan.small_maps == slow_small_maps
        return (3.0 if slow else 1.0) + (0.5 if plan.adam == "fused" else 0.0)

    plan = calibrate_plan(
        SpeedPlan(adam="fused"), cfg, CPU, fake_steps(clock, cost), AVX2, 2, clock
    )
    assert plan.small_maps is (not slow_small_maps)
    assert plan.adam == "foreach"  # made slower by 0.5 s
    assert plan.channels_last is False  # equal cost: the first (rule) candidate stays
    assert "calibrated on Test CPU 3 (avx2), now" in plan.origin


def test_the_choice_is_cached_per_cpu_and_reused(paired_root, tmp_path):
    cfg = tiny_config(paired_root, tmp_path)
    clock = FakeClock()
    calls: list[SpeedPlan] = []

    def cost(plan: SpeedPlan) -> float:
        return 1.0 if plan.small_maps else 2.0

    first = calibrate_plan(SpeedPlan(), cfg, CPU, fake_steps(clock, cost, calls), AVX2, 2, clock)
    assert first.small_maps and calls
    data = json.loads(cache_file().read_text())
    assert str(cache_file()).startswith(str(tmp_path / "cache"))
    assert {e["cpu"] for e in data.values()} == {"Test CPU 3"}

    # the same machine and workload: no candidate is built or run, the cached choice comes back
    calls.clear()
    again = calibrate_plan(SpeedPlan(), cfg, CPU, fake_steps(clock, cost, calls), AVX2, 2, clock)
    assert calls == []
    assert again.small_maps and again.origin.endswith("cached")

    # another CPU (or another size) is measured afresh
    zen4 = CpuInfo("Test CPU 4", frozenset({"avx2", "avx512f", "avx512_bf16"}))
    other = calibrate_plan(SpeedPlan(), cfg, CPU, fake_steps(clock, cost, calls), zen4, 2, clock)
    assert calls and other.origin.endswith("now")
    calls.clear()
    bigger = tiny_config(paired_root, tmp_path, data={"crop_size": 48, "load_size": 48})
    calibrate_plan(SpeedPlan(), bigger, CPU, fake_steps(clock, cost, calls), AVX2, 2, clock)
    assert calls


def test_a_broken_cache_file_is_measured_again(paired_root, tmp_path):
    cfg = tiny_config(paired_root, tmp_path)
    cache_file().parent.mkdir(parents=True)
    cache_file().write_text("{not json")
    clock = FakeClock()
    plan = calibrate_plan(
        SpeedPlan(), cfg, CPU, fake_steps(clock, lambda p: 2.0 - p.small_maps), AVX2, 2, clock
    )
    assert plan.small_maps
    assert json.loads(cache_file().read_text())


def test_calibration_runs_only_for_long_cpu_runs_on_unmeasured_cpus():
    zen4 = CpuInfo("Zen 4", frozenset({"avx512f", "avx512_bf16"}))
    assert wants_calibration("auto", CALIBRATE_MIN_STEPS, CPU, AVX2)
    assert not wants_calibration("auto", CALIBRATE_MIN_STEPS - 1, CPU, AVX2)
    assert not wants_calibration("auto", 10**6, CPU, zen4)  # its rules were measured
    assert not wants_calibration(False, 10**6, CPU, AVX2)
    assert wants_calibration(True, 5, CPU, zen4)
    assert not wants_calibration(True, 10**6, torch.device("cuda"), AVX2)


def test_a_short_run_never_calibrates(paired_root, tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "read_cpu_info", lambda: AVX2)
    cfg = tiny_config(paired_root, tmp_path)  # 4 steps, train.calibrate=auto
    method = Trainer(cfg).build()

    def no_batch():
        raise AssertionError("a short run asked for a calibration batch")

    plan = maybe_calibrate(method, cfg, method.runtime.plan, no_batch)
    assert "calibrated" not in plan.origin
    assert not cache_file().exists()


def test_calibrating_a_real_run_keeps_its_weights_and_random_state(paired_root, tmp_path, caplog):
    cfg = tiny_config(paired_root, tmp_path, train={"calibrate": True, "precision": "fp32"})
    plain = tiny_config(paired_root, tmp_path, train={"calibrate": False, "precision": "fp32"})
    runs = {}
    for name, c in (("calibrated", cfg), ("plain", plain)):
        torch.manual_seed(0)
        with caplog.at_level(logging.INFO, logger="pixmorph"):
            method = build_method(c, CPU, batch=lambda c=c: first_batch(get_method(c.method), c))
        runs[name] = method, torch.rand(3)
    (cal, after_cal), (ref, after_ref) = runs["calibrated"], runs["plain"]
    assert "calibrated on" in cal.runtime.plan.origin
    assert "calibrated on" in caplog.text  # the start-up line names it
    assert torch.equal(after_cal, after_ref)  # the random stream the run continues with
    for (k, a), (_, b) in zip(cal.state_dict().items(), ref.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert cache_file().exists()


def test_cpu_info_reads_model_and_flags_and_honours_a_kernel_cap(tmp_path, monkeypatch):
    f = tmp_path / "cpuinfo"
    f.write_text(
        "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu avx2 fma avx512f avx512_bf16 "
        "amx_bf16 amx_tile\n\nprocessor\t: 1\nmodel name\t: Some Xeon\nflags\t\t: fpu\n"
    )
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    cpu = read_cpu_info(str(f))
    assert (cpu.model, cpu.cpu_class) == ("Some Xeon", "amx_bf16")
    assert cpu.isa == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    capped = read_cpu_info(str(f))
    assert capped.cpu_class == "avx2"
    key = {"m": 1}
    assert calibrate.cache_key(cpu, key) != calibrate.cache_key(capped, key)


def test_the_start_up_line_says_how_the_plan_was_chosen(caplog):
    net = torch.nn.Module()
    net.add_module("g", torch.nn.Conv2d(3, 3, 3))
    with caplog.at_level(logging.INFO, logger="pixmorph"):
        apply_plan(net, SpeedPlan(small_maps=True, origin="small_maps calibrated on X, cached"))
    assert "small_maps True" in caplog.text
    assert "(small_maps calibrated on X, cached)" in caplog.text


def test_a_near_tie_keeps_the_rules_value():
    assert calibrate.fastest({"rule": 1.0, "other": 0.99}) == "rule"
    assert calibrate.fastest({"rule": 1.0, "other": 0.9}) == "other"
    assert calibrate.fastest({"rule": 0.5, "other": 0.9}) == "rule"


@pytest.mark.parametrize("batches_passes", [True, False])
def test_batch_passes_is_timed_only_for_methods_that_batch_passes(
    paired_root, tmp_path, batches_passes
):
    cfg = tiny_config(paired_root, tmp_path)
    clock = FakeClock()
    calls: list[SpeedPlan] = []

    def cost(plan: SpeedPlan) -> float:
        return 1.0 if plan.batch_passes else 0.5  # passes apart are faster on this CPU

    plan = calibrate_plan(
        SpeedPlan(),
        cfg,
        CPU,
        fake_steps(clock, cost, calls),
        AVX2,
        2,
        clock,
        batches_passes=batches_passes,
    )
    assert plan.batch_passes is (not batches_passes)
    assert any(not p.batch_passes for p in calls) is batches_passes
    assert ("batch_passes" in plan.origin) is batches_passes
