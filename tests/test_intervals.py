"""Intervals that say what they are (issue 31): the card spread, the prediction model's interval
and its out-of-sample checks, derived rows' errors from their scatter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flopmetrics.analysis import prediction, scatter, spread


def card_rows(energies, temperatures=None, precision="fp32", pass_="forward"):
    """One row per card of one configuration."""
    temperatures = temperatures or [60.0] * len(energies)
    return pd.DataFrame(
        {
            "gpu_label": "h200",
            "model": "llama-3.2-1b",
            "batch_size": 8,
            "seq_len": 512,
            "precision": precision,
            "pass": pass_,
            "gpu_uuid": [f"GPU-{i}" for i in range(len(energies))],
            "energy_j_per_iter": energies,
            "temperature_max_c": temperatures,
            "gates_passed": True,
        }
    )


def test_the_card_spread_is_the_sd_of_the_cards_means_and_names_its_cards():
    rows = pd.concat(
        [card_rows([100.0, 102.0, 98.0, 101.0]), card_rows([100.0, 102.0])], ignore_index=True
    )
    rows.loc[rows.index[-1], "gpu_uuid"] = "GPU-9"  # a fifth card
    table = spread.card_spread(rows)
    row = table.iloc[0]
    means = [100.0, 102.0, 98.0, 101.0, 102.0]
    assert row["cards"] == 5 and row["gpu_uuids"].count("GPU-") == 5
    assert row["card_sd_pct"] == pytest.approx(100 * np.std(means, ddof=1) / np.mean(means))


def test_a_warm_card_shows_as_a_temperature_slope_not_only_as_spread():
    table = spread.card_spread(card_rows([100.0, 101.0, 102.0, 103.0], [50.0, 60.0, 70.0, 80.0]))
    row = table.iloc[0]
    assert row["temperature_slope_pct_per_c"] == pytest.approx(0.1, rel=0.02)
    assert row["temperature_slope_p"] < 0.01
    assert row["card_sd_pct_at_equal_temperature"] < 0.01 < row["card_sd_pct"]


def test_fewer_cards_than_the_minimum_take_the_largest_spread_of_their_kind_and_say_so():
    table = spread.card_spread(
        pd.concat(
            [
                card_rows([100.0, 104.0, 96.0, 100.0], precision="fp32"),
                card_rows([100.0, 101.0, 99.0, 100.0], precision="bf16"),
                card_rows([100.0, 150.0], precision="fp16"),  # two cards: not a measured spread
            ]
        )
    )
    fp16 = {"gpu_label": "h200", "precision": "fp16", "pass": "forward", "seq_len": 512}
    sd, cards, where = spread.spread_for(table, fp16)
    assert cards == 4 and where.startswith("largest of its GPU and pass (h200 fp32")
    bf16 = {**fp16, "precision": "bf16", "model": "llama-3.2-1b", "batch_size": 8}
    assert spread.spread_for(table, bf16)[2].startswith("this configuration")
    h100 = {**fp16, "gpu_label": "h100"}
    assert spread.spread_for(table, h100)[2].startswith("largest of any GPU")
    assert spread.spread_for(table, fp16, min_cards=5) is None


def line(flops, noise, a=2.5e-12, b=3.0):
    return np.asarray(flops, float), (a * np.asarray(flops, float) + b) * (1 + np.asarray(noise))


def test_the_prediction_interval_comes_from_the_regression_and_grows_with_the_card_spread():
    flops, energy = line([1e12, 2e12, 3e12, 4e12, 5e12], [0.01, -0.01, 0.005, -0.012, 0.008])
    fit = prediction.fit_linear(flops, energy)
    e, lo, hi = prediction.predict_linear(fit, 2.5e12)
    assert lo < e < hi and e == pytest.approx(2.5e-12 * 2.5e12 + 3.0, rel=0.02)
    frame = fit.get_prediction(
        np.array([[1.0, 2.5e12 / fit.flops_unit]]), weights=np.array([e**-2.0])
    ).summary_frame(alpha=0.05)
    assert (lo, hi) == pytest.approx((frame["obs_ci_lower"][0], frame["obs_ci_upper"][0]))
    _, lo2, hi2 = prediction.predict_linear(fit, 2.5e12, card_sd=0.02)
    assert lo2 < lo and hi2 > hi
    assert prediction.fit_linear(flops[:2], energy[:2]) is None  # no degree of freedom left


def test_same_work_at_every_size_is_predicted_by_its_scatter():
    flops = np.full(5, 4e12)
    energy = np.array([10.0, 10.6, 9.5, 10.2, 9.9])
    fit = prediction.fit_linear(flops, energy)
    e, lo, hi = prediction.predict_linear(fit, 4e12)
    assert lo < energy.min() and hi > energy.max() and e == pytest.approx(10.0, rel=0.02)


def test_the_out_of_sample_checks_count_coverage_and_measure_extrapolation():
    flops, energy = line(np.linspace(1e12, 6e12, 6), [0.01, -0.01, 0.0, 0.01, -0.01, 0.05])
    checks = prediction.validate_linear(flops, energy)
    assert checks["loo_pi_checked"] == 6
    assert 0 <= checks["loo_pi_coverage"] <= 1
    # the largest FLOPs, 5 % high, is the one predicted outside the others' range
    assert checks["extrapolation_err_pct"] > 3


def derived_rows(energies, sems, flops=None):
    return pd.DataFrame(
        {
            "gpu_uuid": "GPU-0",
            "gpu_label": "h100",
            "model": "llama-3.2-1b",
            "batch_size": 8,
            "precision": "bf16",
            "pass": "optimizer",
            "derived": True,
            "seq_len": [256 * (i + 1) for i in range(len(energies))],
            "flops": flops if flops is not None else 5e12,
            "energy_j_per_iter": energies,
            "energy_j_per_iter_sem": sems,
        }
    )


def test_derived_rows_that_scatter_beyond_their_errors_get_errors_that_cover_it():
    rows = derived_rows([10.0, 12.0, 9.0, 11.5], [0.1] * 4)
    out = scatter.with_scatter(rows)
    factor = out["sem_scatter_factor"].iloc[0]
    values = rows["energy_j_per_iter"]
    chi2 = (((values - values.mean()) / 0.1) ** 2).sum()
    assert factor == pytest.approx(np.sqrt(chi2 / 3)) and out["scatter_p"].iloc[0] < 1e-6
    assert out["energy_j_per_iter_sem"].to_numpy() == pytest.approx(0.1 * factor)
    assert (out["energy_j_per_iter_sem_windows"] == 0.1).all()


def test_derived_rows_within_their_errors_or_of_other_work_are_left_as_they_are():
    calm = scatter.with_scatter(derived_rows([10.0, 10.05, 9.95], [0.1] * 3))
    assert (calm["sem_scatter_factor"] == 1.0).all()
    other = scatter.with_scatter(derived_rows([10.0, 20.0], [0.1] * 2, flops=[5e12, 1e13]))
    assert (other["sem_scatter_factor"] == 1.0).all() and other["scatter_p"].isna().all()


def test_the_ee_interval_of_another_card_is_wider_than_this_cards():
    lo, hi = prediction.ee_with_cards(100.0, 98.0, 103.0, card_sd=1.0, cards=7)
    assert lo < 98.0 and hi > 103.0
    assert prediction.ee_with_cards(100.0, 98.0, 103.0, card_sd=float("nan"), cards=0) == (
        98.0,
        103.0,
    )


def job_rows(energies, power_w, model="gemma-3-270m", derived=False):
    """One row per measurement (a job: a start time) of one configuration on one card."""
    return pd.DataFrame(
        {
            "gpu_label": "h200",
            "model": model,
            "batch_size": 1,
            "seq_len": 256,
            "precision": "bf16",
            "pass": "forward",
            "gpu_uuid": "GPU-0",
            "timestamp_utc": [f"2026-12-05T05:3{i}:00" for i in range(len(energies))],
            "energy_j_per_iter": energies,
            "power_mean_w": power_w,
            "idle_power_w": 120.0,
            "power_limit_w": 700.0,
            "derived": derived,
            "temperature_max_c": 40.0,
            "gates_passed": True,
        }
    )


def test_steps_waiting_on_the_host_take_the_95th_percentile_of_their_job_to_job_changes():
    waiting = job_rows([1.0, 1.5, 1.2], 150.0)  # a duty of 5 %: the host sets the pace
    busy = job_rows([10.0, 13.0, 9.0], 690.0, model="llama-3.2-1b")  # near the cap
    derived = job_rows([5.0, 50.0], float("nan"), model="x", derived=True)  # a difference
    table = spread.card_spread(pd.concat([waiting, busy, derived], ignore_index=True))
    row = table[table["model"] == "gemma-3-270m"].iloc[0]
    assert row["measurements"] == 3 and row["cards"] == 1
    assert row["duty_max"] == pytest.approx(30 / 580)
    change, pairs, where = spread.repeat_for(table, "h200")
    logs = np.log([1.5, 1.2, 1.5 / 1.2])
    assert pairs == 6 and change == pytest.approx(np.expm1(np.quantile(np.repeat(logs, 2), 0.95)))
    assert "1 configurations measured 3 times (gemma-3-270m)" in where
    assert spread.repeat_for(table, "h100") is None
    assert spread.repeat_for(table[table["model"] != "gemma-3-270m"], "h200") is None
