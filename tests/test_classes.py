"""Energy per operation class (experiment ``classes``): the workload's passes, the Shapley
shares, the per-class fit, and the experiment run by the real workflow on the CPU."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from conftest import job_spec

from flopmetrics.analysis import class_energy
from flopmetrics.contracts.vocabulary import class_subsets, tape_classes, tape_pass
from flopmetrics.jobs.run import run
from flopmetrics.workloads import classes

NAMES = ["gemm", "attention", "elementwise", "optimizer", "other"]


def _rows(value, names=NAMES, sem=0.0, time=None) -> pd.DataFrame:
    """The pass rows of one configuration whose subsets cost ``value(subset)`` J."""
    rows = [{"pass": "train_step", "energy_j_per_iter": value(frozenset(names)) * 0.98}]
    for s in class_subsets(names):
        rows.append(
            {
                "pass": tape_pass(s, names),
                "op_classes": "+".join(sorted(s)),
                "energy_j_per_iter": value(s),
                "flops": 10.0 * len(s),
                "bytes_accessed": 100.0 * len(s),
            }
        )
    df = pd.DataFrame(rows)
    df["energy_j_per_iter_sem"] = sem
    df["time_per_iter_s"] = df["energy_j_per_iter"] / 500 if time is None else time
    df["flops"] = df["flops"].fillna(0)
    ident = {"experiment": "classes", "target": "h200", "model": "m", "precision": "bf16"}
    ident |= {"batch_size": 8, "seq_len": 256, "gpu_uuid": "GPU-x", "status": "ok"}
    return df.assign(**ident, gpu_label="h200", parameters=1, tokens=2048)


def test_pass_names_round_trip_and_cover_every_subset():
    subsets = class_subsets(NAMES)
    assert len(subsets) == 2 ** len(NAMES) - 1
    names = [tape_pass(s, NAMES) for s in subsets]
    assert names[-1] == "tape" and len(set(names)) == len(names)
    assert all(tape_classes(n, NAMES) == s for n, s in zip(names, subsets, strict=True))
    with pytest.raises(ValueError, match="no tape pass"):
        tape_classes("train_step", NAMES)


def test_shapley_shares_are_each_class_alone_when_classes_do_not_interact():
    alone = dict(zip(NAMES, [60.0, 5.0, 25.0, 14.0, 8.0], strict=True))
    row = class_energy.configuration(_rows(lambda s: sum(alone[c] for c in s)))
    for c in NAMES:
        assert row[f"energy_j_{c}"] == pytest.approx(alone[c])
        assert row[f"energy_j_{c}_alone"] == pytest.approx(alone[c])
    assert row["interaction_j"] == pytest.approx(0, abs=1e-9)
    assert row["remainder_pct"] == pytest.approx(100 * (1 / 0.98 - 1))


def test_an_interaction_is_shared_between_the_classes_that_make_it():
    alone = dict(zip(NAMES, [60.0, 5.0, 25.0, 14.0, 8.0], strict=True))

    def value(s):  # GEMM and elementwise together cost 6 J less than apart
        return sum(alone[c] for c in s) - (6.0 if {"gemm", "elementwise"} <= s else 0.0)

    row = class_energy.configuration(_rows(value, sem=0.5))
    # derived as train_step - forward_backward derives the optimizer: the whole interaction
    assert row["energy_j_gemm_last"] == pytest.approx(54.0)
    assert row["energy_j_optimizer_last"] == pytest.approx(14.0)
    assert row["energy_j_gemm_last_sem"] == pytest.approx(0.5 * math.sqrt(2))
    assert row["energy_j_gemm"] == pytest.approx(57.0)
    assert row["energy_j_elementwise"] == pytest.approx(22.0)
    assert row["energy_j_optimizer"] == pytest.approx(14.0)
    assert row["classes_sum_j"] == pytest.approx(row["tape_energy_j"])
    assert row["interaction_j"] == pytest.approx(-6.0)
    # each share's standard error is the windows' (0.5 J each) through the Shapley weights
    weights = class_energy.shapley_weights(NAMES)["gemm"]
    assert row["energy_j_gemm_sem"] == pytest.approx(
        0.5 * math.sqrt(sum(w * w for w in weights.values()))
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_shares_add_up_to_the_tape_for_any_measured_values(seed):
    rng = np.random.default_rng(seed)
    values = {s: float(rng.uniform(1, 100)) for s in class_subsets(NAMES)}
    row = class_energy.configuration(_rows(values.__getitem__))
    assert row["classes_sum_j"] == pytest.approx(values[frozenset(NAMES)])


def test_a_configuration_missing_a_subset_is_refused_naming_it():
    rows = _rows(lambda s: float(len(s)))
    rows = rows[rows["pass"] != "tape:attention+gemm"]
    with pytest.raises(ValueError, match="not measured"):
        class_energy.configuration(rows)


def _synthetic_table(rates: dict, configs) -> pd.DataFrame:
    out = []
    for b, s in configs:
        row = {"target": "h200", "model": "m", "precision": "bf16", "batch_size": b}
        row |= {"seq_len": s, "gpu_label": "h200", "classes": "+".join(NAMES)}
        total = 0.0
        for c in NAMES:
            flops, nbytes = 1e12 * b * s * (1 + s / 4096), 1e9 * b * s
            row[f"flops_{c}"], row[f"bytes_{c}"] = flops, nbytes
            e = rates[c][0] * flops + rates[c][1] * nbytes
            row[f"energy_j_{c}"] = e
            total += e
        # the step costs less than its tape by a fixed amount per parameter
        row["parameters"] = 1e9 * (2 if b == 16 else 1)
        row["tape_energy_j"] = total
        row["train_step_energy_j"] = total - 1.5e-9 * row["parameters"]
        out.append(row)
    return pd.DataFrame(out)


def test_the_per_class_fit_recovers_known_rates_and_predicts_left_out_configurations():
    rates = {c: (0.0, 2e-10) for c in NAMES} | {"gemm": (1e-12, 0.0), "attention": (8e-13, 3e-10)}
    table = _synthetic_table(rates, [(8, 256), (8, 512), (8, 1024), (16, 512), (4, 2048)])
    fit = class_energy.fit(table).set_index("class")
    assert fit.loc["gemm", "j_per_flop"] == pytest.approx(1e-12)
    assert fit.loc["attention", "j_per_byte"] == pytest.approx(3e-10)
    assert fit.loc["elementwise", "j_per_flop"] == 0  # fitted on bytes alone
    assert fit.loc["remainder", "j_per_parameter"] == pytest.approx(-1.5e-9)
    checked = class_energy.validate(table)
    assert (checked["fitted_on"] == 4).all()
    assert checked["miss_pct"].abs().max() < 1e-6
    assert checked["miss_vs_tape_pct"].abs().max() < 1e-6


def test_a_configuration_alone_in_its_precision_gets_no_prediction():
    rates = {c: (1e-12, 1e-10) for c in NAMES}
    table = _synthetic_table(rates, [(8, 256), (8, 512)])
    table.loc[1, "precision"] = "fp32"
    checked = class_energy.validate(table)
    assert checked["predicted_j"].isna().all()


@pytest.mark.parametrize("precision", ["fp32", "bf16-mixed"])
def test_the_tape_replays_the_steps_work_class_by_class_on_the_cpu(precision):
    workload = classes.build(
        "cpu", precision, {"model": "tiny-llama", "batch_size": 2, "seq_len": 16}, 0
    )
    with workload.precision_scope():
        counted = workload.counted()
        flops = workload.headline_flops(counted, workload.analytic())
        names = workload.classes()
        assert names == NAMES
        assert len(workload.passes) == 1 + 2 ** len(names) - 1
        # the tape misses none of the step's counted work, and each class's FLOPs add up to it
        assert flops["tape"][0] == flops["train_step"][0]
        single = [flops[tape_pass({c}, names)][0] for c in names]
        assert sum(single) == flops["tape"][0]
        # replaying the optimizer moves the weights; restore() puts the starting ones back
        start = [p.detach().clone() for p in workload.trainable]
        workload.steps()["tape:optimizer"]()
        assert any(not bool((p == s).all()) for p, s in zip(workload.trainable, start, strict=True))
        workload.restore()
        assert all(bool((p == s).all()) for p, s in zip(workload.trainable, start, strict=True))
        assert workload.health("tape", None)() == (True, "")


def test_a_classes_job_writes_a_row_per_subset_with_its_classes_and_bytes():
    workload = {"model": "tiny-llama", "batch_size": 2, "seq_len": 16}
    workload |= {"attn_implementation": "sdpa", "attention_flops": "full"}
    spec = job_spec("classes", workload)
    rows, _ = run(spec)
    tape = rows[rows["pass"].str.startswith("tape")]
    assert len(tape) == 31 and set(rows["status"]) == {"ok"}
    assert (rows["numerics"] == "finite").all()
    by_pass = tape.set_index("pass")
    assert by_pass.loc["tape", "operations"] == sum(
        by_pass.loc[f"tape:{c}", "operations"] for c in NAMES
    )
    assert by_pass.loc["tape", "bytes_accessed"] > by_pass.loc["tape:gemm", "bytes_accessed"] > 0
    table = class_energy.class_table(rows)
    assert len(table) == 1
    shares = sum(table.iloc[0][f"time_s_{c}"] for c in NAMES)
    assert shares == pytest.approx(table.iloc[0]["tape_time_s"])


def test_workflow_runs_classes_and_schedules_only_a_new_length(workflow):
    config = workflow.config | {
        "classes": {
            "targets": ["cpu"],
            "models": ["tiny-llama"],
            "precisions": ["fp32"],
            "batch_size": [2],
            "seq_len": [16],
            "repeats": 2,
            "min_repeats": 2,
            "min_window_s": 0.01,
            "warmup_iterations": 1,
            "launch": "eager",
        }
    }
    workflow.write_config(config)
    out = "results/classes/validation.csv"
    workflow.run(out, "results/figures/classes/energy_stacked.png")
    merged = pd.read_parquet(workflow.workdir / "results/merged/classes.parquet")
    assert len(merged) == 32 and set(merged["experiment"]) == {"classes"}
    table = pd.read_csv(workflow.workdir / "results/classes/class_energy.csv")
    assert list(table["seq_len"]) == [16]
    config["classes"]["seq_len"] = [16, 24]
    workflow.write_config(config)
    assert workflow.scheduled(out)["profile_classes"] == 1


def test_cuda_graph_launch_on_a_cpu_target_is_refused_naming_the_key(workflow):
    workflow.write_config(
        workflow.config | {"classes": {"targets": ["cpu"], "launch": "cuda_graph"}}
    )
    proc = workflow.run("--dry-run", check=False)
    assert proc.returncode != 0
    assert "classes.launch" in proc.stdout + proc.stderr


def test_every_subset_helper_matches_itertools():
    expected = {frozenset(c) for r in range(1, 4) for c in itertools.combinations("abc", r)}
    assert set(class_subsets("abc")) == expected


def test_a_worker_never_resizes_a_workload_of_another_experiment():
    """One worker serves every experiment of a target: an llm configuration after a classes
    configuration of the same model must not get the classes workload (it measures other
    passes), nor the other way round."""
    from flopmetrics.workloads import causal_lm

    workload = {"model": "tiny-llama", "batch_size": 2, "seq_len": 16}
    first = classes.build("cpu", "fp32", workload, 0)
    # an llm sweep of the train step alone builds the same LMConfig as the classes workload
    llm_workload = workload | {"seq_len": 8, "passes": ["train_step"]}
    llm = causal_lm.build("cpu", "fp32", llm_workload, 0, first)
    assert type(llm) is causal_lm.CausalLMWorkload
    again = classes.build("cpu", "fp32", workload | {"seq_len": 8}, 0, llm)
    assert type(again) is classes.ClassesWorkload and again is not llm
    resized = classes.build("cpu", "fp32", workload | {"seq_len": 12}, 0, again)
    assert type(resized) is classes.ClassesWorkload and resized.model is again.model
