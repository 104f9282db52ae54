"""The serving model (time from bytes, kernels and FLOPs; energy from idle power, bytes and
FLOPs), its intervals and extrapolation rules, and `flopmetrics estimate` for prefill and
decode."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_cli import cli
from test_models import MOE

from flopmetrics.analysis import co2e, serving
from flopmetrics.contracts import packaged
from flopmetrics.contracts.errors import ConfigError
from flopmetrics.pipeline import config as fm_config

TRUE = {
    "s_per_byte": 2.5e-13,
    "s_per_launch": 2e-6,
    "s_per_flop": 1.2e-15,
    "dynamic_j_per_byte": 1e-10,
    "dynamic_j_per_flop": 1.5e-12,
    "idle_power_w": 120.0,
}


def synthetic(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Rows of three models x four batch sizes made by ``TRUE``, times ``1 + noise``."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, (weights, kernels) in {
        "a": (2e9, 900),
        "b": (1.5e10, 1800),
        "c": (5e9, 1300),
    }.items():
        for batch in (1, 8, 64, 256):
            x = {"B": weights + batch * 3e6, "K": kernels, "F": weights * batch}
            t = TRUE["s_per_byte"] * x["B"] + TRUE["s_per_launch"] * x["K"]
            t += TRUE["s_per_flop"] * x["F"]
            dynamic = TRUE["dynamic_j_per_byte"] * x["B"] + TRUE["dynamic_j_per_flop"] * x["F"]
            scale = 1 + noise * rng.standard_normal()
            rows.append(
                {
                    **x,
                    "model_key": model,
                    "batch_size": batch,
                    "t": t * scale,
                    "dynamic": dynamic * scale,
                    "E": (TRUE["idle_power_w"] * t + dynamic) * scale,
                    "idle_power_w": TRUE["idle_power_w"],
                }
            )
    return pd.DataFrame(rows)


def test_the_fit_recovers_the_coefficients_that_made_the_rows():
    coef = serving.fit(synthetic(), "h200", "bf16")
    for key, value in TRUE.items():
        assert coef[key] == pytest.approx(value, rel=1e-4), key


def test_coefficients_stay_within_the_datasheet():
    """Rows faster than the card's bandwidth and peak allow cannot make the fit say so."""
    rows = synthetic()
    rows["t"] *= 1e-3
    coef = serving.fit(rows, "h200", "bf16")
    per_byte, per_flop = serving._bounds("h200", "bf16")
    assert coef["s_per_byte"] >= per_byte * (1 - 1e-9)
    assert coef["s_per_flop"] >= per_flop * (1 - 1e-9)
    assert min(coef.values()) >= 0


def test_held_out_errors_are_measured_misses():
    exact = synthetic()
    assert max(serving.held_out_misses(exact, "h200", "bf16")) < 1e-3
    model_err, batch_err = serving.held_out_misses(synthetic(noise=0.05), "h200", "bf16")
    assert 1 < model_err < 40 and 1 < batch_err < 40


def group(**over) -> pd.Series:
    return pd.Series(
        {
            **TRUE,
            "residual_sd": 0.04,
            "dof": 10,
            "models": "a,b",
            "cards": 2,
            "batch_size_min": 1,
            "batch_size_max": 256,
            "context_len_min": 640,
            "context_len_max": 640,
            "model_extrapolation_err_pct": 14.0,
            "extrapolation_err_pct": 13.0,
            "launch": "cuda_graph",
            **over,
        }
    )


X = {"B": 3e9, "K": 1000, "F": 3e11, "context_len": 640}


def test_an_interval_is_widened_by_the_measured_miss_of_what_it_extrapolates():
    inside = serving.predict(group(), X, {"model": "a", "batch_size": 8})
    other = serving.predict(group(), X, {"model": "z", "batch_size": 8})
    assert inside["lo"] < inside["step"] < inside["hi"] and other["step"] == inside["step"]
    assert other["hi"] == pytest.approx(inside["hi"] * 1.14)
    assert "leave-one-model-out" in other["interval"] and other["basis"].startswith("extrapolated")
    both = serving.predict(group(), X, {"model": "z", "batch_size": 512})
    assert both["hi"] == pytest.approx(inside["hi"] * 1.14 * 1.13)
    refused = serving.predict(
        group(model_extrapolation_err_pct=math.nan), X, {"model": "z", "batch_size": 8}
    )
    assert "status" in refused and "leave-one-model-out" in refused["status"]


def test_the_launch_count_follows_the_models_layers_and_family():
    """Kernels per step scale with layers and differ by architecture, with no GPU."""
    one = serving.launches("tiny-llama", "decode")
    deeper = {
        "name": "deep",
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 256,
        "tie_word_embeddings": True,
    }
    four = serving.launches(serving.model_key(deeper), "decode")
    per_layer = (four - one) / 2
    assert per_layer > 10 and four == one + 2 * per_layer
    assert serving.launches("tiny-gpt2", "decode") != one


def test_features_count_bytes_of_weights_and_the_attended_cache():
    small = serving.features("tiny-llama", 1, 32, 16, "decode")
    large = serving.features("tiny-llama", 4, 32, 16, "decode")
    # the weights once, the cache per sequence: 4 sequences add 3 caches of 41 positions
    per_position = (large["B"] - small["B"]) / (3 * (32 + 8 + 1))
    assert per_position == 2 * 2 * 16 * 2 * 2  # layers x (k, v) x kv heads x head_dim x bf16
    assert large["tokens"] == 4 and large["F"] > small["F"] and large["K"] == small["K"]


DECODE = ("estimate", "--model", "tiny-llama", "--tokens", "1e6", "--target", "h200")
DECODE += ("--precision", "bf16", "--pass", "decode")


def test_estimate_answers_for_decode_in_joules_per_token(tmp_path):
    r = json.loads(
        cli(
            *DECODE,
            "--batch-size",
            "8",
            "--json",
            cwd=tmp_path,  # the packaged serving model
        ).stdout
    )
    assert r["status"] == "ok" and r["pass"] == "decode" and r["prompt_len"] == 512
    assert r["steps"] == pytest.approx(1e6 / 8)
    assert r["j_per_token"] == pytest.approx(r["energy_j"] / 1e6)
    assert r["kwh_per_million_tokens"] == pytest.approx(r["kwh"])
    assert r["j_per_token_lo"] < r["j_per_token"] < r["j_per_token_hi"]
    assert "not calibrated" in r["basis"] and "leave-one-model-out" in r["interval"]


def test_a_mixture_of_experts_is_refused_not_priced_as_a_dense_model(tmp_path):
    """A serving step reads the weights of the experts its tokens are routed to; the serving
    model, fitted on dense models, books every weight as read: no estimate, the bound only."""
    (tmp_path / "moe.json").write_text(json.dumps(MOE))
    args = [*DECODE[:2], "moe.json", *DECODE[3:], "--batch-size", "2", "--json"]
    out = cli(*args, check=False, cwd=tmp_path)
    r = json.loads(out.stdout)
    assert out.returncode == 3 and "mixture of experts" in r["status"]
    assert r["energy_j_datasheet_bound"] > 0


def test_estimate_refuses_a_training_size_for_a_serving_pass(tmp_path):
    out = cli(
        *DECODE,
        "--seq-len",
        "64",
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "--seq-len not with --pass decode" in out.stderr


def test_a_serving_co2e_workload_needs_its_lengths_named():
    workload = {
        "name": "chat",
        "model": "llama-3.2-1b",
        "tokens": 1e9,
        "batch_size": 64,
        "target": "h200",
        "precision": "bf16",
        "pass": "decode",
    }
    schema = fm_config.load_schema()

    def with_(w: dict) -> dict:
        config = yaml.safe_load((REPO / "config/config.yaml").read_text())
        config["co2e"]["workloads"] = [w]
        return config

    with pytest.raises(ConfigError, match=r"co2e\.workloads\[0\].*prompt_len"):
        fm_config.validate(with_(workload), schema)
    with pytest.raises(ConfigError, match="seq_len"):  # a training pass needs its length
        fm_config.validate(with_({**workload, "pass": "train_step"}), schema)
    fm_config.validate(with_({**workload, "prompt_len": 512, "output_len": 256}), schema)


CHAT = {
    "name": "chat",
    "model": "tiny-llama",
    "tokens": 1e6,
    "batch_size": 8,
    "prompt_len": 32,
    "output_len": 16,
    "target": "h200",
    "precision": "bf16",
    "pass": "decode",
}


def serving_table() -> pd.DataFrame:
    """A serving model's table of one h200 bf16 decode group, fitted on tiny-llama."""
    return pd.DataFrame(
        [{**group(models="tiny-llama"), "gpu_label": "h200", "precision": "bf16", "pass": "decode"}]
    )


def test_the_co2e_table_takes_a_serving_workload_beside_a_training_one():
    table, w = serving_table(), dict(CHAT)
    train = {**w, "name": "train", "pass": "train_step", "seq_len": 64}
    del train["prompt_len"], train["output_len"]
    training = pd.read_parquet(packaged.table_path())
    both = co2e.estimate([w, train], training, 1.5, 400, serving_table=table)
    t = both.iloc[0]
    assert t["status"] == "ok" and t["steps"] == pytest.approx(1e6 / 8)
    assert (
        both.iloc[1]["steps"] == pytest.approx(1e6 / (8 * 64))
        and both.iloc[1]["pass"] == "train_step"
    )
    assert t["kg_co2e"] == pytest.approx(t["kwh"] * 1.5 * 0.4)
    assert "context 40 outside" in t["basis"]  # 32 + 16 / 2, fitted at context 640 only


def test_a_measured_serving_configuration_is_measured_not_predicted():
    table, w = serving_table(), dict(CHAT)
    row = {k: w[k] for k in ("model", "batch_size", "prompt_len", "output_len", "precision")}
    row.update({"pass": "decode", "launch": "cuda_graph", "gpu_label": "h200", "windows": 4})
    row.update({"gates_passed": True, "energy_j_per_iter": 0.5, "energy_j_per_iter_sem": 0.001})
    rows = pd.DataFrame([row, {**row, "launch": "eager", "energy_j_per_iter": 9.0}])
    t = co2e.estimate([w], pd.DataFrame(), 1.5, 400, rows, serving_table=table).iloc[0]
    assert t["basis"].startswith("measured") and t["energy_j"] == pytest.approx(0.5 * 1e6 / 8)
    assert t["energy_j_lo"] < t["energy_j"] < t["energy_j_hi"]
    other = co2e.estimate(
        [{**w, "batch_size": 4}], pd.DataFrame(), 1.5, 400, rows, serving_table=table
    ).iloc[0]
    assert other["basis"].startswith("extrapolated: serving model")


def test_packaging_one_table_keeps_what_the_provenance_says_of_the_other(tmp_path):
    import contextlib

    from flopmetrics.pipeline import package_calibration as pc

    config = REPO / "config/config.yaml"
    with contextlib.chdir(REPO):
        pc.write(packaged.table_path(), config, tmp_path)
        pc.write_serving(packaged.serving_path(), config, tmp_path)
        again = pc.write(packaged.table_path(), config, tmp_path)  # the training table refitted
    assert again["serving_fitted_from"] == packaged.provenance()["serving_fitted_from"]
    assert again["inputs_sha256"] == packaged.provenance()["inputs_sha256"]
    assert json.loads((tmp_path / packaged.PROVENANCE).read_text()) == again
    assert (tmp_path / packaged.SERVING).read_bytes() == packaged.serving_path().read_bytes()
