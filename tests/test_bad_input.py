"""Bad input fails before anything runs, naming the input; nothing is dropped, duplicated or
overwritten in silence. One test per fault class of docs/reliability.md, each with the issue's
example and variants of our own; every parse-time case runs the real Snakemake CLI and checks
that no results folder was made."""

from __future__ import annotations

import copy
import json
import shutil

import pandas as pd
import pytest
from conftest import REPO, job_spec
from test_models import MOE

pytestmark = pytest.mark.e2e

REFERENCE = REPO / "resources/reference/h100"


def refuses(workflow, mutate, *expected: str, before=None):
    """Apply ``mutate`` to the test's starting config; the dry run must fail naming ``expected``
    and write nothing."""
    cfg = copy.deepcopy(workflow.__dict__.setdefault("base_config", copy.deepcopy(workflow.config)))
    mutate(cfg)
    workflow.write_config(cfg)
    if before:
        before(workflow.workdir)
    proc = workflow.run("--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out[-3000:]}"
    assert not (workflow.workdir / "results").exists()
    return out


def with_llm(cfg, models):
    cfg["llm"] = {
        "targets": ["cpu"],
        "models": models,
        "seq_len": [8],
        "batch_size": [1],
        "repeats": 1,
        "min_window_s": 0.01,
        "warmup_iterations": 0,
    }


def write_config_json(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "vocab_size": 64,
                **fields,
            }
        )
    )


# --- model names that break paths ---------------------------------------------------------------
def test_model_names_that_break_paths(workflow):
    wd = workflow.workdir
    # the example: a folder with a space would have named the model 'my model'
    refuses(
        workflow,
        lambda c: with_llm(c, [str(wd / "my model/config.json")]),
        "llm.models[0]",
        "'my model'",
        "not a safe file name",
        before=lambda w: write_config_json(w / "my model"),
    )
    # two paths that end in folders of the same name would write the same files
    refuses(
        workflow,
        lambda c: with_llm(c, [str(wd / "a/m/config.json"), str(wd / "b/m/config.json")]),
        "llm.models[1]",
        "'m' is also the name of llm.models[0]",
        before=lambda w: (write_config_json(w / "a/m"), write_config_json(w / "b/m")),
    )
    # variant: an inline name that is not a file name
    refuses(
        workflow, lambda c: with_llm(c, [{"name": "../x", "model_type": "llama"}]), "llm.models[0]"
    )
    # variant: a name starting with a dot, given by a folder
    refuses(
        workflow,
        lambda c: with_llm(c, [str(wd / ".hidden")]),
        "'.hidden'",
        "not a safe file name",
        before=lambda w: write_config_json(w / ".hidden"),
    )


def test_config_json_in_the_working_directory_and_dotdot_get_a_safe_name(workflow):
    """'config.json' in the working directory (the name was '') and 'x/../config.json' (the name
    was '..') are named after the folder that really holds the file."""
    wd = workflow.workdir
    write_config_json(wd)
    cfg = copy.deepcopy(workflow.config)
    with_llm(cfg, [str(wd / "sub/../config.json")])
    (wd / "sub").mkdir()
    workflow.write_config(cfg)
    out = workflow.run("--dry-run").stdout
    assert f"results/raw/llm/cpu/{wd.name}/fp32/b1_s8.parquet" in out


# --- inline model configs checked too late ------------------------------------------------------
def test_model_configs_are_built_at_parse_time(workflow):
    # the issue's example: a Llama config without sizes takes transformers' defaults, and says so
    cfg = copy.deepcopy(workflow.config)
    with_llm(cfg, [{"name": "mini", "model_type": "llama"}])
    workflow.write_config(cfg)
    proc = workflow.run("--dry-run")
    assert (
        "model mini: llama, 32 layers, hidden size 4096, 6,738,415,616 parameters"
        in proc.stderr + proc.stdout
    )
    # a model type transformers does not know, named with transformers' own message
    refuses(
        workflow,
        lambda c: with_llm(c, [{"name": "x", "model_type": "llamma"}]),
        "llm.models[0]",
        "transformers rejects this config (model_type 'llamma')",
        "Unrecognized model identifier",
    )
    # an architecture without the configured attention (BLOOM has no sdpa): every job of it
    # failed on the GPU, after the queue
    bloom = {"name": "b", "model_type": "bloom", "hidden_size": 32, "n_layer": 1, "n_head": 2}
    refuses(
        workflow,
        lambda c: with_llm(c, [{**bloom, "vocab_size": 64}]),
        "llm.models[0]",
        "model 'b' has no 'sdpa' attention",
        "set llm.attn_implementation: eager",
    )

    # a mixture of experts in a precision PyTorch's grouped GEMM refuses on a GPU: every job of
    # it failed in its first step, after the queue
    def moe_in_fp32_on_a_gpu(c):
        with_llm(c, [{"name": "moe", **MOE}])
        c["llm"].update(targets=["h200"], precisions=["bf16", "fp32"])

    refuses(
        workflow,
        moe_in_fp32_on_a_gpu,
        "llm.precisions[1]",
        "model 'moe': transformers runs its experts with PyTorch's grouped GEMM",
        "measure it in bf16, or on the cpu target alone",
    )
    # a model path that is a folder without a config.json (was a bare IsADirectoryError)
    refuses(
        workflow,
        lambda c: with_llm(c, [str(workflow.workdir / "empty")]),
        "llm.models[0]",
        "is a folder without a config.json",
        before=lambda w: (w / "empty").mkdir(),
    )
    # a config.json that does not parse names its line
    refuses(
        workflow,
        lambda c: with_llm(c, [str(workflow.workdir / "bad/config.json")]),
        "llm.models[0]",
        "does not parse: line 2",
        before=lambda w: (
            (w / "bad").mkdir(),
            (w / "bad/config.json").write_text('{"model_type": "llama",\n "hidden_size": }'),
        ),
    )


# --- duplicates merged in silence ---------------------------------------------------------------
def test_reference_folders_that_would_merge_rows_twice(workflow):
    ref = str(REFERENCE)
    refuses(
        workflow, lambda c: c["reference"].update(dirs=[ref, ref]), "reference.dirs", "non-unique"
    )
    refuses(
        workflow,
        lambda c: c["reference"].update(dirs=[ref, ref + "/"]),
        "reference.dirs[1]",
        "overlaps reference.dirs[0]",
    )
    refuses(
        workflow,
        lambda c: c["reference"].update(dirs=[ref, ref + "/raw/.."]),
        "reference.dirs[1]",
        "overlaps reference.dirs[0]",
    )
    refuses(
        workflow,
        lambda c: c["reference"].update(dirs=["results"]),
        "reference.dirs[0]",
        "this run's results folder",
        before=lambda w: None,
    )


def test_a_file_copied_over_another_jobs_file_is_refused(tmp_path):
    from flopmetrics.analysis.merge import MergeError, merge_energy

    raw = tmp_path / "ref/raw/llm/h100/llama-3.2-1b/fp16"
    raw.mkdir(parents=True)
    shutil.copy(
        REFERENCE / "raw/llm/h100/llama-3.2-1b/fp16/b8_s256.parquet", raw / "b8_s512.parquet"
    )
    with pytest.raises(
        MergeError, match=r"b8_s512.parquet: its path names seq_len=512 but its rows hold seq_len"
    ):
        merge_energy([], [str(raw / "b8_s512.parquet")])
    # variant: the same measurement under two names (identity by config hash, GPU, start time)
    other = tmp_path / "other/raw/llm/h100/llama-3.2-1b/fp16"
    other.mkdir(parents=True)
    shutil.copy(
        REFERENCE / "raw/llm/h100/llama-3.2-1b/fp16/b8_s256.parquet", other / "b8_s256.parquet"
    )
    shutil.copy(
        REFERENCE / "raw/llm/h100/llama-3.2-1b/fp16/b8_s256.parquet", raw / "b8_s256.parquet"
    )
    with pytest.raises(MergeError, match="hold the same measurement"):
        merge_energy([], [str(raw / "b8_s256.parquet"), str(other / "b8_s256.parquet")])
    # variant: another precision's file under this precision's name
    shutil.copy(
        REFERENCE / "raw/llm/h100/llama-3.2-1b/fp16-mixed/b8_s256.parquet", raw / "b8_s384.parquet"
    )
    with pytest.raises(
        MergeError, match="precision=fp16 but its rows hold precision = \\['fp16-mixed'\\]"
    ):
        merge_energy([], [str(raw / "b8_s384.parquet")])


# --- settings that disable a safeguard ----------------------------------------------------------
def test_settings_that_would_disable_a_safeguard(workflow):
    refuses(
        workflow,
        lambda c: c["mlp"].update(min_window_s=0),
        "mlp.min_window_s: 0 is less than or equal to",
    )
    refuses(
        workflow,
        lambda c: c.update(calibration={"experiments": []}),
        "calibration.experiments",
        "should be non-empty",
    )
    refuses(
        workflow,
        lambda c: c["figures"].update(energy_efficiency={"seq_len": 333}),
        "figures.energy_efficiency.seq_len",
        "333 was never measured",
    )
    refuses(
        workflow,
        lambda c: c.update(energy={"sampler_hz": 1e6}),
        "energy.sampler_hz",
        "maximum of 1000",
    )
    refuses(
        workflow,
        lambda c: c["figures"].update(efficiency_vs_seq_len={"passes": []}),
        "figures.efficiency_vs_seq_len.passes",
        "should be non-empty",
    )


def test_a_window_of_too_few_counter_periods_fails_the_window_gate():
    from flopmetrics.energy import gates

    row = {
        "gpu_key": "h100_sxm",
        "gpu_label": "h100",
        "precision": "bf16",
        "status": "ok",
        "derived": False,
        "numerics": "finite",
        "min_window_s": 0.01,
        "window_s_min": 0.25,
        "counter_period_s": 0.1,
    }
    out = gates.apply(pd.DataFrame([row, {**row, "window_s_min": 0.31}]))
    assert out["gate_window"].tolist() == [False, True]


# --- crashes without the input named ------------------------------------------------------------
def test_inputs_that_crashed_without_a_name(workflow):
    def foreign(w):
        (w / "foreign/raw/x").mkdir(parents=True)
        pd.DataFrame({"a": [1], "gpu": ["h100"]}).to_parquet(w / "foreign/raw/x/t.parquet")

    # the example: a reference parquet with foreign columns (was UnknownGPU: 'nan')
    refuses(
        workflow,
        lambda c: c["reference"].update(dirs=["foreign"]),
        "reference.dirs",
        "foreign/raw/x/t.parquet: not a flopmetrics per-job table",
        before=foreign,
    )
    # a trace of a model this config does not run (was an InputFunctionException)
    refuses(
        workflow,
        lambda c: c["figures"].update(
            power_trace={"trace": "results/traces/llm/cpu/nothere/fp32/b8_s256.parquet"}
        ),
        "figures.power_trace.trace",
        "is not a trace any job of this config writes",
    )
    # variant: a trace path outside results that does not exist
    refuses(
        workflow,
        lambda c: c["figures"].update(power_trace={"trace": "nowhere/t.parquet"}),
        "figures.power_trace",
        "'nowhere/t.parquet' does not exist",
    )


def test_a_reference_file_that_is_not_parquet_is_named(tmp_path):
    from flopmetrics.analysis.merge import MergeError, merge_energy

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/x.parquet").write_text("not parquet")
    with pytest.raises(MergeError, match="x.parquet: not a readable parquet file"):
        merge_energy([], [str(tmp_path / "raw/x.parquet")])
    pd.DataFrame(
        {
            "experiment": ["llm"],
            "pass": ["forward"],
            "precision": ["fp16"],
            "status": ["ok"],
            "gpu_label": [None],
        }
    ).to_parquet(tmp_path / "raw/y.parquet")
    with pytest.raises(MergeError, match="y.parquet: gpu_label empty is no datasheet GPU"):
        merge_energy([], [str(tmp_path / "raw/y.parquet")])


# --- checked only at job time -------------------------------------------------------------------
def test_values_checked_only_at_job_time_are_checked_at_parse_time(workflow):
    refuses(
        workflow,
        lambda c: c.update(energy={"meter": "nvml"}),
        "energy.meter",
        "'nvml' reads a GPU",
        "mlp.targets[0] = 'cpu'",
    )
    refuses(
        workflow,
        lambda c: c["figures"]["mlp_pct_diff_heatmap"].update(cmap="vlagg"),
        "figures.mlp_pct_diff_heatmap.cmap",
        "'vlagg' is not a matplotlib or seaborn colour map",
        "vlag",
    )
    refuses(
        workflow,
        lambda c: (
            c["execution"].update(run_on_cpu=True),
            c["mlp"].update(targets=["h100"]),
            c.update(energy={"meter": "nvml_trace"}),
        ),
        "energy.meter",
        "execution.run_on_cpu is on",
    )
    refuses(workflow, lambda c: c.update(energy={"sampler_hz": 5000}), "energy.sampler_hz")
    refuses(
        workflow,
        lambda c: c["mlp"].update(launch="cuda_graph"),
        "mlp.launch",
        "'cuda_graph' replays CUDA graphs",
        "mlp.targets[0] = 'cpu'",
    )
    refuses(workflow, lambda c: c["mlp"].update(launch="graph"), "mlp", "launch", "'graph'")
    refuses(
        workflow,
        lambda c: c.update(thesis={"compare_gpu": "h1000"}),
        "thesis.compare_gpu",
        "'h1000'",
    )
    refuses(
        workflow,
        lambda c: c.update(
            co2e={
                "workloads": [
                    {
                        "name": "w",
                        "model": "tiny-llama",
                        "tokens": 1e6,
                        "batch_size": 1,
                        "seq_len": 8,
                        "target": "h100",
                        "precision": "fp32",
                    },
                    {
                        "name": "w",
                        "model": "tiny-llama",
                        "tokens": 1e6,
                        "batch_size": 1,
                        "seq_len": 8,
                        "target": "cuda",
                        "precision": "fp32",
                    },
                ]
            }
        ),
        "co2e.workloads[1].name",
        "'w' also names co2e.workloads[0]",
    )
    refuses(
        workflow,
        lambda c: c.update(
            co2e={
                "workloads": [
                    {
                        "name": "w",
                        "model": "tiny-llama",
                        "tokens": 1e6,
                        "batch_size": 1,
                        "seq_len": 8,
                        "target": "h100",
                        "precision": "fp32",
                        "world_size": 4,
                    }
                ]
            }
        ),
        "co2e.workloads[0].strategy",
        "world_size 4 needs a strategy",
    )
    refuses(
        workflow,
        lambda c: c.update(
            distributed={
                "targets": ["cpu"],
                "scaling": ["strong"],
                "batch_size": [6],
                "world_size": [4],
            }
        ),
        "distributed.batch_size",
        "6 cannot be split evenly over world_size 4",
    )
    refuses(
        workflow,
        lambda c: c.update(distributed={"targets": ["cpu"], "zeus": True}),
        "distributed.zeus",
        "distributed.targets[0] = 'cpu'",
    )
    refuses(
        workflow,
        lambda c: c.update(distributed={"targets": ["h1000"]}),
        "distributed.targets[0]",
        "'h1000'",
    )
    refuses(
        workflow,
        lambda c: c.update(distributed={"targets": ["cpu"], "models": ["no-such-model"]}),
        "distributed.models[0]",
        "no-such-model",
    )


# --- CPU out of memory --------------------------------------------------------------------------
def test_cpu_out_of_memory_is_an_oom_row():
    from flopmetrics.jobs.run import run

    rows, trace = run(
        job_spec("mlp", {"n": 1, "d": 2_000_000, "m": 2}), progress=lambda m: None
    )  # 16 TB of W
    assert (rows["status"] == "oom").all() and rows["error"].str.contains(
        "can't allocate memory"
    ).all()
    assert not rows["gates_passed"].any() and trace.empty


def test_a_cuda_graph_job_on_the_cpu_is_refused_before_it_measures():
    from flopmetrics.jobs.run import run

    with pytest.raises(
        ValueError,
        match="launch 'cuda_graph' replays passes from CUDA graphs, but this mlp job runs on",
    ):
        run(
            job_spec("mlp", {"n": 1, "d": 8, "m": 2}, measure={"launch": "cuda_graph"}),
            progress=lambda m: None,
        )
    with pytest.raises(ValueError, match="unknown launch 'graph'"):
        job_spec("mlp", {"n": 1, "d": 8, "m": 2}, measure={"launch": "graph"})


def test_python_memory_error_is_an_oom_row(monkeypatch):
    from flopmetrics.jobs import run as run_module
    from flopmetrics.jobs.run import run

    def exhausted(*args):
        raise MemoryError("no room for the activations")

    monkeypatch.setattr(run_module, "build", exhausted)
    rows, _ = run(job_spec("mlp", {"n": 1, "d": 4, "m": 2}), progress=lambda m: None)
    assert (rows["status"] == "oom").all() and rows["error"].str.contains("no room").all()


def test_other_runtime_errors_still_fail(monkeypatch):
    from flopmetrics.jobs import run as run_module
    from flopmetrics.jobs.run import run

    def broken(*args):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(run_module, "build", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run(job_spec("mlp", {"n": 1, "d": 4, "m": 2}), progress=lambda m: None)


# --- docs that promised what the code did not do ------------------------------------------------
def test_variant_keys_find_their_labels_calibration():
    import numpy as np
    from test_calibration_co2e import synthetic_fits

    from flopmetrics.analysis import co2e

    cal = synthetic_fits("h100", "bf16-mixed", "train_step")
    w = {
        "name": "x",
        "model": "llama-3.2-1b",
        "tokens": 8192,
        "batch_size": 8,
        "seq_len": 1024,
        "precision": "bf16-mixed",
        "pass": "train_step",
    }
    assert co2e.estimate([{**w, "target": "h100_sxm"}], cal, 1.5, 400).iloc[0]["status"] == "ok"
    assert np.isnan(
        co2e.estimate([{**w, "target": "a100_sxm4_80gb"}], cal, 1.5, 400).iloc[0]["kwh"]
    )


def test_check_devices_fires_under_the_cluster_profile_too(workflow):
    """config/README.md says what the code does: a cuda target is checked at parse time
    whatever the executor; a cluster's GPU targets are architecture labels, checked on the node."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = copy.deepcopy(workflow.config)
    cfg["mlp"]["targets"] = ["cuda"]
    workflow.write_config(cfg)
    proc = workflow.run("--profile", str(REPO / "profiles/slurm"), "--dry-run", check=False)
    assert (
        proc.returncode != 0
        and "mlp.targets: 'cuda' requested but no CUDA GPU" in proc.stdout + proc.stderr
    )


def test_nsight_compute_settings_are_checked_at_parse_time(workflow):
    refuses(
        workflow, lambda c: c.update(ncu={"targets": ["cpu"]}), "ncu.targets[0]", "GPU kernels only"
    )
    refuses(
        workflow,
        lambda c: c.update(ncu={"targets": ["h1000"]}),
        "ncu.targets[0]",
        "no datasheet entry",
    )
    refuses(workflow, lambda c: c.update(ncu={"mlp": [[2, 128]]}), "ncu", "mlp")
    refuses(workflow, lambda c: c.update(ncu={"precisions": ["fp16-mixed"]}), "ncu", "fp16-mixed")
    refuses(workflow, lambda c: c.update(ncu={"llm": ["llama-3.2-1b:2"]}), "ncu", "llama-3.2-1b:2")
    refuses(
        workflow,
        lambda c: c["figures"].update(ncu_gap_heatmap={"cmap": "rocket_rr"}),
        "figures.ncu_gap_heatmap.cmap",
        "rocket_r",
    )


def test_a_workload_key_the_builder_would_not_read_is_refused():
    """From the API or the shell a job's parameters are not schema-checked: a key the workload's
    builder ignores (or one it needs) is named instead of measuring something else."""
    with pytest.raises(ValueError, match=r"mlp workload: unknown keys \['passes'\]"):
        job_spec("mlp", {"n": 2, "d": 4, "m": 2, "passes": ["forward"]})
    with pytest.raises(ValueError, match=r"missing \['seq_len'\]"):
        job_spec(
            "llm",
            {
                "model": "tiny-llama",
                "batch_size": 2,
                "passes": ["forward"],
                "attn_implementation": "sdpa",
                "attention_flops": "full",
            },
        )


def test_the_executor_a_command_asks_for_is_read_from_its_options_and_profile(tmp_path):
    from flopmetrics.pipeline.slurm import requested_executor

    assert requested_executor(["snakemake", "-n", "--executor", "slurm"], {}) == "slurm"
    assert requested_executor(["snakemake", "-e", "slurm"], {}) == "slurm"
    profile = str(REPO / "profiles/slurm")
    assert requested_executor(["snakemake", "--profile", profile, "-n"], {}) == "slurm"
    assert requested_executor(["snakemake", "-n"], {"SNAKEMAKE_PROFILE": profile}) == "slurm"
    assert requested_executor(["snakemake", "-c", "all"], {}) is None
    assert requested_executor(["snakemake", "--profile", str(tmp_path)], {}) is None


def test_inline_models_transformers_refuses_and_trace_paths_are_named_before_anything_runs(
    workflow,
):
    llama = {"model_type": "llama", "num_hidden_layers": 1, "vocab_size": 100}
    refuses(
        workflow,
        lambda c: with_llm(
            c, [{"name": "five-heads", **llama, "hidden_size": 64, "num_attention_heads": 5}]
        ),
        "llm.models[0]",
        "model 'five-heads'",
        "not a multiple of the number of attention heads",
    )
    refuses(
        workflow,
        lambda c: with_llm(
            c, [{"name": "tiny", **llama}, {"name": "negative", **llama, "hidden_size": -64}]
        ),
        "llm.models[1]",
        "model 'negative'",
    )
    for trace in ("results", "config.yaml"):
        refuses(
            workflow,
            lambda c, trace=trace: c["figures"]["power_trace"].update(trace=trace),
            "figures.power_trace.trace",
            f"{trace!r} is not a trace file",
        )


def test_tf32_on_the_cpu_is_refused_not_mislabelled(workflow):
    refuses(
        workflow,
        lambda c: c["mlp"].update(precisions=["fp32", "tf32"]),
        "mlp.precisions[1]",
        "on the cpu target it computes in fp32",
    )


def test_a_pass_that_does_not_fit_keeps_the_passes_measured_before_it(monkeypatch):
    """A train step that runs out of memory beside a forward that fitted (a 14B mixture of
    experts on an H200) marked every pass of its configuration ``oom``: the forward's measured
    windows were thrown away and the rows said it did not fit."""
    import torch

    from flopmetrics.jobs.run import run
    from flopmetrics.workloads import mlp

    steps = mlp.MLPWorkload.steps

    def backward_too_big(self):  # the MLP's last pass, as the train step is an LLM's
        def oom():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80 GiB")

        return {**steps(self), "forward_backward": oom}

    monkeypatch.setattr(mlp.MLPWorkload, "steps", backward_too_big)
    rows, _ = run(job_spec("mlp", {"n": 1, "d": 8, "m": 2}), progress=lambda m: None)
    status = rows.set_index("pass")["status"]
    assert status["forward_backward"] == "oom"
    assert "80 GiB" in rows.set_index("pass").loc["forward_backward", "error"]
    assert status.drop("forward_backward").to_dict() == {"forward": "ok", "forward_train": "ok"}
    assert "backward" not in status  # derived from the pass that did not fit
    assert len(rows) == rows["pass"].nunique() == 3  # no pass twice


def test_preregistering_a_set_the_pipeline_would_refuse_stops_before_predicting(tmp_path):
    """Set 20's configuration asked for SDPA, which none of its models has: the predictions
    were of eager steps, and only the GPU run's config check said so. The pre-registration
    script runs the same check first and writes nothing."""
    import subprocess
    import sys

    import yaml

    bloom = {"name": "tiny-bloom", "model_type": "bloom", "hidden_size": 32, "n_layer": 2}
    bloom |= {"n_head": 2, "vocab_size": 64}
    llm = {"targets": ["h200"], "models": [bloom], "precisions": ["bf16"], "batch_size": [1]}
    llm |= {"seq_len": [16], "passes": ["forward"], "attn_implementation": "sdpa"}
    config = tmp_path / "set.yaml"
    config.write_text(yaml.safe_dump({"llm": llm}))
    out = tmp_path / "predictions.csv"
    script = REPO / "benchmarks" / "preregister.py"
    args = [sys.executable, str(script), str(config), "--out", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0
    assert "llm.models[0]" in proc.stderr and "set llm.attn_implementation: eager" in proc.stderr
    assert not out.exists()
