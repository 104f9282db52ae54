"""Meter logic against a fake NVML (the hardware edge), plus RAPL and the null meter."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fake_nvml import FakeNvml

from flopmetrics.contracts.errors import MeterError
from flopmetrics.energy import setup as meter_setup
from flopmetrics.energy.counter import NvmlCounterMeter, integrate_power, window_stats
from flopmetrics.energy.cpu import NullMeter, RaplMeter
from flopmetrics.energy.nvml import NvmlGpu, throttle_names
from flopmetrics.energy.sampler import PowerSampler
from flopmetrics.energy.windows import Monitor
from flopmetrics.jobs.protocol import run_window

SETTINGS = meter_setup.EnergySettings(meter="auto", sampler_hz=50, guard_s=0.3, idle_baseline_s=2.0)


@pytest.fixture
def fake():
    return FakeNvml(idle_w=60.0, period_s=0.1)


def busy_window(fake, monitor, seconds, watts=400.0, name="p", guard_s=0.0):
    """A window of whole 10 ms 'iterations' during which the fake GPU draws ``watts``, idle
    before and after (and the same iterations for ``guard_s`` on each side)."""

    def step():
        fake.set_power(watts)
        time.sleep(0.01)

    w = run_window(monitor, name, step, seconds, guard_s)
    fake.set_power(fake.changes[0][1])  # back to idle after the window
    return w


def running_sampler(gpu, hz=100):
    """A started sampler that has already seen a counter step (the job starts it early)."""
    sampler = PowerSampler(gpu, hz=hz).start()
    assert sampler.wait_for(time.perf_counter(), 1.0, tick=True)
    return sampler


def test_counter_only_steps_every_period(fake):
    gpu = NvmlGpu(fake, fake.nvmlDeviceGetHandleByIndex(0))
    reads = {gpu.energy_j() for _ in range(200) if not time.sleep(0.001)}
    assert 1 <= len(reads) <= 4  # ~0.2 s of polling sees only a couple of steps


def test_guarded_interpolated_counter_meets_truth_despite_reporting_delay():
    """Like the H100's, this counter steps every 100 ms and reports each step 40 ms late; the
    GPU idles between windows. With guard iterations the interpolated counter is within 1 % of
    the true energy; without them the delay shifts energy out of the window, and the plain
    difference of counter values is off by up to a step at each end."""
    fake = FakeNvml(idle_w=60.0, period_s=0.1, counter_delay_s=0.04)
    sampler = running_sampler(NvmlGpu(fake, None))
    counter = NvmlCounterMeter(sampler)
    mon = Monitor("cpu", [counter])
    errors = {"guarded": [], "unguarded": [], "raw": []}
    try:
        for guard_s in (0.25, 0.0) * 3:
            w = busy_window(fake, mon, 0.55, guard_s=guard_s)
            truth = fake.energy_between(w.start_s, w.end_s)
            errors["guarded" if guard_s else "unguarded"].append(
                abs(w.readings["energy_j"] - truth) / truth
            )
            errors["raw"].append(abs(w.readings["energy_counter_raw_j"] - truth) / truth)
            time.sleep(0.15)
    finally:
        sampler.stop()
    assert w.readings["counter_period_s"] == pytest.approx(0.1, rel=0.05)
    assert max(errors["guarded"]) < 0.01
    assert np.mean(errors["unguarded"]) > 2 * max(errors["guarded"])
    assert np.mean(errors["raw"]) > 2 * max(errors["guarded"])


def test_counter_window_shorter_than_a_period_is_refused(fake):
    sampler = running_sampler(NvmlGpu(fake, None))
    mon = Monitor("cpu", [NvmlCounterMeter(sampler)])
    try:
        assert sampler.wait_for(
            time.perf_counter(), 1.0, tick=True
        )  # the next step is ~100 ms away
        mon.begin_window("short")
        with pytest.raises(MeterError, match="shorter than one energy-counter period"):
            mon.end_window("short")
    finally:
        sampler.stop()


def test_counter_that_never_steps_is_an_error():
    with PowerSampler(NvmlGpu(FakeNvml(period_s=100.0), None), hz=100) as sampler:
        mon = Monitor("cpu", [NvmlCounterMeter(sampler, wait_s=0.2)])
        mon.begin_window("w")
        with pytest.raises(MeterError, match="did not step within 0.2 s"):
            mon.end_window("w")


def test_counter_needs_a_step_before_the_window(fake):
    with PowerSampler(NvmlGpu(fake, None), hz=100) as sampler:
        mon = Monitor("cpu", [NvmlCounterMeter(sampler)])
        mon.begin_window("w")  # the sampler has not seen a single step yet
        time.sleep(0.25)
        with pytest.raises(MeterError, match="start the sampler earlier"):
            mon.end_window("w")


def test_sampler_trace_integrates_to_truth_and_records_everything(fake):
    gpu = NvmlGpu(fake, None)
    fake.reasons = 0x4  # software power cap
    with PowerSampler(gpu, hz=100) as sampler:
        mon = Monitor("cpu", [NvmlCounterMeter(sampler), sampler])
        time.sleep(0.15)
        w = busy_window(fake, mon, 0.6, watts=500.0, guard_s=0.2)
        time.sleep(0.05)
    truth = fake.energy_between(w.start_s, w.end_s)
    assert w.readings["energy_trace_j"] == pytest.approx(truth, rel=0.03)
    assert w.readings["energy_j"] == pytest.approx(w.readings["energy_trace_j"], rel=0.03)
    assert 400 < w.readings["power_mean_w"] <= 500
    assert w.readings["sm_clock_mean_mhz"] == 1980 and w.readings["temperature_max_c"] == 45
    assert throttle_names(int(w.readings["clock_event_reasons"])) == ["sw_power_cap"]
    trace = sampler.trace()
    assert len(trace) >= 50 and trace["t"].is_monotonic_increasing
    # the 1 s average lags: what nvidia-smi power.draw would show inside a 0.6 s window
    inside = trace[(trace["t"] > w.start_s) & (trace["t"] < w.end_s)]
    assert inside["power_average_w"].mean() < 0.8 * inside["power_instant_w"].mean()


def test_sampler_refuses_low_rates(fake):
    with pytest.raises(ValueError, match=">= 20 Hz"):
        PowerSampler(NvmlGpu(fake, None), hz=5)


def test_integrate_power_interpolates_at_edges():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([100.0, 100.0, 300.0, 300.0])
    assert integrate_power(t, p, 0.5, 2.5) == pytest.approx(50 + 200 + 150)
    assert math.isnan(integrate_power(t[:1], p[:1], 0, 1))


def test_window_stats_or_of_throttle_reasons():
    trace = pd.DataFrame(
        {
            "t": [0, 1, 2],
            "power_instant_w": [1.0, 1, 1],
            "power_average_w": [1.0] * 3,
            "sm_clock_mhz": [1.0] * 3,
            "mem_clock_mhz": [1.0] * 3,
            "temperature_c": [40, 50, 45],
            "clock_event_reasons": [0, 0x40, 0x1],
        }
    )
    s = window_stats(trace, 0, 2)
    assert s["clock_event_reasons"] == 0x41 and s["temperature_max_c"] == 50
    assert throttle_names(0x41) == ["hw_thermal"]  # idle (0x1) is benign


def test_setup_meters_chooses_counter_or_trace():
    with_counter = meter_setup.setup_meters("cuda:0", SETTINGS, nvml=FakeNvml())
    assert with_counter.method == "nvml_counter_interpolated"
    assert [m.name for m in with_counter.meters] == ["nvml_counter", "nvml_trace"]
    no_counter = meter_setup.setup_meters("cuda:0", SETTINGS, nvml=FakeNvml(has_counter=False))
    assert no_counter.method == "nvml_trace" and [m.name for m in no_counter.meters] == [
        "nvml_trace"
    ]
    with pytest.raises(Exception, match="no NVML energy counter"):
        meter_setup.setup_meters(
            "cuda:0", replace(SETTINGS, meter="nvml"), nvml=FakeNvml(has_counter=False)
        )
    with pytest.raises(ValueError, match="needs a cuda device"):
        meter_setup.setup_meters("cpu", replace(SETTINGS, meter="nvml"))
    with pytest.raises(ValueError, match="unknown meter"):
        replace(SETTINGS, meter="smi")


def test_cpu_without_rapl_gets_an_explicit_null_meter(tmp_path, monkeypatch):
    monkeypatch.setattr(meter_setup, "RaplMeter", lambda: RaplMeter(tmp_path))
    setup = meter_setup.setup_meters("cpu", SETTINGS)
    assert setup.method == "none" and "no CPU energy meter" in setup.status
    assert math.isnan(setup.meters[0].end(0.0)["energy_j"])


def test_rapl_sums_packages_and_handles_wraparound(tmp_path):
    for pkg, (energy, max_range) in enumerate([(1_000_000, 10_000_000), (9_900_000, 10_000_000)]):
        zone = tmp_path / f"intel-rapl:{pkg}"
        zone.mkdir()
        (zone / "energy_uj").write_text(str(energy))
        (zone / "max_energy_range_uj").write_text(str(max_range))
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone (core): not counted again
    meter = RaplMeter(tmp_path)
    meter.begin(0.0)
    (tmp_path / "intel-rapl:0/energy_uj").write_text("3000000")  # +2 J
    (tmp_path / "intel-rapl:1/energy_uj").write_text("100000")  # wrapped: +0.2 J
    assert meter.end(0.0)["energy_j"] == pytest.approx(2.2)
    with pytest.raises(MeterError, match="no readable RAPL"):
        RaplMeter(tmp_path / "missing")


def test_null_meter_reads_nan():
    m = NullMeter("no meter")
    m.begin(0.0)
    assert math.isnan(m.end(0.0)["energy_j"])


def test_sampler_process_streams_samples_on_the_shared_clock():
    """The process transport used on real GPUs: samples are taken in another interpreter and
    their perf_counter times are comparable with ours (CLOCK_MONOTONIC)."""
    import fake_nvml_module  # noqa: F401  (importable by the child too: tests/ is on sys.path)

    gpu = NvmlGpu(FakeNvml(), None)
    sampler = PowerSampler(gpu, hz=100, process=True, module="fake_nvml_module")
    t0 = time.perf_counter()
    with sampler:
        mon = Monitor("cpu", [sampler])
        mon.begin_window("w")
        time.sleep(0.4)
        w = mon.end_window("w")
    trace, ticks = sampler.trace(), sampler.ticks()
    assert sampler._proc.returncode is not None  # stopped
    assert len(ticks) >= 3 and np.median(np.diff(ticks[:, 0])) == pytest.approx(
        0.1, rel=0.05
    )  # steps timed
    assert len(trace) >= 30 and trace["t"].is_monotonic_increasing and trace["t"].iloc[0] >= t0 - 1
    assert w.readings["power_mean_w"] == pytest.approx(250.0, rel=0.01)
    assert w.readings["energy_trace_j"] == pytest.approx(250.0 * w.elapsed_s, rel=0.02)
