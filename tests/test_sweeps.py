"""Adding a value to a sweep list measures exactly the new configurations (real Snakemake runs):
every configuration is one job, served by a long-lived measuring worker per
target, and nothing measured before is rewritten."""

from __future__ import annotations

import copy
import glob
from pathlib import Path

import pandas as pd
import pytest

from flopmetrics.contracts.experiments import BY_NAME
from flopmetrics.pipeline import sweeps

FAST = {"repeats": 2, "min_repeats": 2, "min_window_s": 0.01, "warmup_iterations": 1}
CONFIG = {
    "mlp": {"targets": ["cpu"], "precisions": ["fp32"], "n": [2], "d": [16], "m": [4, 8], **FAST},
    "llm": {
        "targets": ["cpu"],
        "models": ["tiny-llama"],
        "precisions": ["fp32"],
        "batch_size": [2],
        "seq_len": [16],
        **FAST,
    },
    "matmul": {"targets": ["cpu"], "precisions": ["fp32"], "sizes": [32], **FAST},
    "inference": {
        "targets": ["cpu"],
        "models": ["tiny-llama"],
        "precisions": ["fp32"],
        "batch_size": [1],
        "prompt_len": [8],
        "output_len": [4],
        **FAST,
    },
    "energy": {"idle_baseline_s": 0.0},
    "figures": {"mlp_flops_vs_d": {"n": None, "m": None}},
}


def measured(workdir: Path) -> dict[str, str]:
    """Every per-configuration file there is -> when its configuration was measured."""
    out = {}
    for path in glob.glob(str(workdir / "results/raw/*/**/*.parquet"), recursive=True):
        rows = pd.read_parquet(path, columns=["timestamp_utc"])
        out[str(Path(path).relative_to(workdir))] = rows["timestamp_utc"].iloc[0]
    return out


def files(config: dict, workdir: Path) -> set[str]:
    """The table file of every configuration ``config`` measures (validated as Snakemake does)."""
    from flopmetrics.pipeline import config as fm_config

    cfg = fm_config.validate(copy.deepcopy(config), fm_config.load_schema())
    names = ("mlp", "llm", "matmul", "inference")
    return {f for e in names for f in sweeps.files(cfg, BY_NAME[e])}


def _wider(config: dict) -> dict:
    """``config`` with a value added to every sweep list (and a list reordered)."""
    wider = copy.deepcopy(config)
    wider["mlp"]["m"].append(12)
    wider["llm"]["seq_len"].append(24)
    wider["llm"]["precisions"].append("bf16-mixed")
    wider["matmul"]["sizes"].append(48)
    wider["inference"]["batch_size"].append(2)
    return wider


def test_a_configurations_parameters_and_hash_do_not_depend_on_the_sweep_lists():
    """A configuration's job parameters (hashed into its rows' config_hash) are the same
    whatever else its sweep lists hold, so a merge can check each file against them."""
    from flopmetrics.jobs.params import job_params
    from flopmetrics.jobs.provenance import config_hash
    from flopmetrics.pipeline import config as fm_config

    narrow = fm_config.validate(copy.deepcopy(CONFIG), fm_config.load_schema())
    wide = _wider(CONFIG)
    wide["mlp"]["m"].reverse()
    wide = fm_config.validate(wide, fm_config.load_schema())
    for name in ("mlp", "llm", "matmul", "inference"):
        for wildcards in sweeps.configurations(narrow, name):
            params = job_params(narrow, name, wildcards)
            assert params == job_params(wide, name, wildcards)
            assert config_hash(params) == config_hash(job_params(wide, name, wildcards))
    # a measurement setting is part of them: it reruns what it affects
    slower = copy.deepcopy(narrow)
    slower["mlp"]["repeats"] = 3
    wildcards = sweeps.configurations(narrow, "mlp")[0]
    assert job_params(slower, "mlp", wildcards) != job_params(narrow, "mlp", wildcards)


@pytest.mark.e2e
def test_adding_a_value_to_any_sweep_list_measures_only_the_new_configurations(workflow):
    cfg = {**copy.deepcopy(workflow.config), **copy.deepcopy(CONFIG)}
    cfg["figures"] = {**workflow.config["figures"], **CONFIG["figures"]}
    workflow.write_config(cfg)
    workflow.run(*sorted(files(cfg, workflow.workdir)))  # the measurements; the full run below
    first = measured(workflow.workdir)
    assert set(first) == files(cfg, workflow.workdir) and len(first) == 5

    wider = _wider(cfg)
    workflow.write_config(wider)
    new = files(wider, workflow.workdir) - set(first)
    # mlp: one m; llm: one length x the old precision, and the new precision x both lengths;
    # matmul: one size; inference: one batch size
    assert len(new) == 1 + 1 + 2 + 1 + 1
    jobs = workflow.scheduled()  # the whole workflow's jobs
    assert sum(v for k, v in jobs.items() if k.startswith("profile_")) == len(new)
    workflow.run(*sorted(files(wider, workflow.workdir)))
    second = measured(workflow.workdir)
    assert {f for f in second if f not in first} == new  # the new ones were measured
    assert {f: second[f] for f in first} == first  # nothing measured before was redone

    # removing values measures nothing; the whole workflow runs on and deletes nothing measured
    workflow.write_config(cfg)
    assert not [k for k in workflow.scheduled() if k.startswith("profile_")]
    workflow.run()
    assert measured(workflow.workdir) == second
