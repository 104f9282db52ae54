from pathlib import Path

import pytest
import yaml

from flopmetrics.contracts import paths
from flopmetrics.jobs import params as job_params
from flopmetrics.pipeline import config as fm_config
from flopmetrics.pipeline import devices, sweeps

REPO = Path(__file__).resolve().parents[1]
SCHEMA = fm_config.load_schema()


def default_config():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_default_config_is_valid_and_defaults_fill_in():
    cfg = default_config()
    del cfg["mlp"]["repeats"]
    fm_config.validate(cfg, SCHEMA)
    assert cfg["mlp"]["repeats"] == 3


def test_defaults_fill_inside_list_items():
    """A co2e workload without `pass` gets the schema's default (train_step); so does every
    other object the schema describes, list items and Slurm architectures included."""
    cfg = default_config()
    del cfg["co2e"]["workloads"][0]["pass"]
    cfg["slurm"]["architectures"]["h100"] = {"partition": "gpu"}
    fm_config.validate(cfg, SCHEMA)
    assert cfg["co2e"]["workloads"][0]["pass"] == "train_step"
    # and it runs: the CO2e table is computed for train_step
    import pandas as pd

    from flopmetrics.analysis import co2e

    cal = pd.DataFrame(
        [
            {
                "gpu_label": "h100",
                "precision": cfg["co2e"]["workloads"][0]["precision"],
                "pass": "train_step",
                "ee_flops_per_j": 4e11,
                "ee_lo": 3e11,
                "ee_hi": 5e11,
            }
        ]
    )
    row = co2e.estimate(cfg["co2e"]["workloads"][:1], cal, 1.5, 400).iloc[0]
    assert row["pass"] == "train_step" and row["status"] == "ok" and row["kwh"] > 0
    assert cfg["slurm"]["architectures"]["h100"] == {
        "partition": "gpu",
        "gpu_type": None,
        "constraint": None,
        "account": None,
    }


def test_figure_blocks_come_from_the_registry():
    from flopmetrics.figures.registry import FIGURES

    blocks = SCHEMA["properties"]["figures"]["properties"]
    assert set(blocks) == {f.name for f in FIGURES}
    assert all(
        b["properties"]["dpi"]["default"] == 120 and b["additionalProperties"] is False
        for b in blocks.values()
    )
    cfg = default_config()
    del cfg["figures"]["co2e"]
    fm_config.validate(cfg, SCHEMA)
    assert cfg["figures"]["co2e"] == {"dpi": 120}


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda c: c["mlp"].update(dd=[1]), "unknown config key mlp.dd"),
        (
            lambda c: c["mlp"].update(devices=["cpu"]),
            "config key mlp.devices was renamed to mlp.targets",
        ),
        (
            lambda c: c["mlp"].update(dtypes=["fp32"]),
            "config key mlp.dtypes was renamed to mlp.precisions",
        ),
        (lambda c: c.update(mpl={}), "unknown config key mpl"),
        (lambda c: c["figures"]["mlp_flops_vs_d"].update(colour="red"), "mlp_flops_vs_d.colour"),
        (
            lambda c: c["mlp"].update(repeats="three"),
            "mlp.repeats: 'three' is not of type 'integer'",
        ),
        (lambda c: c["mlp"].update(d=[64, 0]), "mlp.d[1]: 0 is less than the minimum of 1"),
        (lambda c: c["mlp"].update(d=[-5]), "mlp.d[0]: -5 is less than the minimum of 1"),
        (lambda c: c["mlp"].update(precisions=["fp8"]), "mlp.precisions[0]: 'fp8' is not one of"),
        (
            lambda c: c["mlp"].update(targets=["tpu"]),
            "mlp.targets[0]: no datasheet entry for GPU 'tpu'",
        ),
        (lambda c: c["mlp"].update(targets=["Cuda 0"]), "mlp.targets[0]: 'Cuda 0' does not match"),
        (lambda c: c["mlp"].pop("n"), "'n' is a required property"),
        (
            lambda c: c["figures"]["mlp_flops_vs_d"].update(m=7),
            "figures.mlp_flops_vs_d.m: 7 is not in the sweep",
        ),
    ],
)
def test_bad_config_names_key_and_value(mutate, expected):
    cfg = default_config()
    mutate(cfg)
    with pytest.raises(fm_config.ConfigError) as err:
        fm_config.validate(cfg, SCHEMA)
    assert expected in str(err.value)


def test_all_errors_reported_at_once():
    cfg = default_config()
    cfg["mlp"]["d"] = [0]
    cfg["mlp"]["m"] = ["x"]
    with pytest.raises(fm_config.ConfigError) as err:
        fm_config.validate(cfg, SCHEMA)
    assert "mlp.d[0]" in str(err.value) and "mlp.m[0]" in str(err.value)


def test_cuda_without_gpu_is_refused():
    with pytest.raises(
        fm_config.ConfigError, match=r"mlp.targets: 'cuda' requested but no CUDA GPU"
    ):
        devices.check_devices(["cpu", "cuda"], cuda_available=False, cuda_count=0)
    with pytest.raises(fm_config.ConfigError, match=r"'cuda:2' requested but only 1 GPU"):
        devices.check_devices(["cuda:2"], cuda_available=True, cuda_count=1)
    devices.check_devices(["cpu", "cuda:0"], cuda_available=True, cuda_count=1)


def test_grid_and_job_params():
    cfg = fm_config.validate(default_config(), SCHEMA)
    mlp = cfg["mlp"]
    grid = sweeps.grid(cfg, "mlp")
    assert len(grid) == len(mlp["targets"]) * len(mlp["precisions"]) * len(mlp["n"]) * len(
        mlp["d"]
    ) * len(mlp["m"])
    params = job_params.job_params(cfg, "mlp", {"target": "cpu", "precision": "fp32"})
    # one job per (target, precision) measures every size, in the order of its outputs
    sizes = [(w["n"], w["d"], w["m"]) for w in params["workloads"]]
    assert len(sizes) == len(set(sizes)) == len(mlp["n"]) * len(mlp["d"]) * len(mlp["m"])
    outputs = sweeps.job_outputs(cfg, "mlp", "RAW")
    assert [o.format(target="cpu", precision="fp32") for o in outputs] == [
        f"results/raw/mlp/cpu/fp32/n{n}_d{d}_m{m}.parquet" for n, d, m in sizes
    ]
    assert params["measure"]["repeats"] == mlp["repeats"]
    # a CPU job has no sampler and no guards: editing those reruns GPU jobs only
    assert (
        params["energy"] == {**cfg["energy"], "sampler_hz": None, "guard_s": None}
        and "run_on_cpu" not in params
    )
    gpu = job_params.job_params(cfg, "mlp", {"target": "h100", "precision": "fp32"})
    assert gpu["energy"] == cfg["energy"]
    # profiler_flops: auto = the thesis's slow counter on CPUs only
    assert mlp["profiler_flops"] == "auto"
    assert params["measure"]["profiler_flops"] is True and gpu["measure"]["profiler_flops"] is False
    # launch: the schema's default reaches every job, and a job of another launch is another job
    assert params["measure"]["launch"] == "eager"
    graphs = job_params.job_params(
        {**cfg, "mlp": {**mlp, "launch": "cuda_graph"}},
        "mlp",
        {"target": "h100", "precision": "fp32"},
    )
    assert graphs["measure"] == {**gpu["measure"], "launch": "cuda_graph"}
    # llm: auto by default on a GPU; a CPU has no graphs, so its jobs say eager (and do not rerun)
    assert cfg["llm"]["launch"] == "auto"
    llm_wc = {"model": cfg["llm"]["models"][0], "batch_size": cfg["llm"]["batch_size"][0]}
    assert (
        job_params.job_params(cfg, "llm", {**llm_wc, "target": "h100"})["measure"]["launch"]
        == "auto"
    )
    assert (
        job_params.job_params(cfg, "llm", {**llm_wc, "target": "cpu"})["measure"]["launch"]
        == "eager"
    )
    # every experiment's params have the one shape of JobSpec: one spec per size, same settings
    from flopmetrics.jobs.spec import JobSpec

    for experiment in ("mlp", "llm", "matmul"):
        jobs = {
            tuple(wc[k] for k in paths.JOB_WILDCARDS[experiment])
            for wc in sweeps.grid(cfg, experiment)
        }
        for job in jobs:
            params = job_params.job_params(
                cfg, experiment, dict(zip(paths.JOB_WILDCARDS[experiment], job))
            )
            specs = JobSpec.batch(params)
            assert (
                len(specs)
                == len(params["workloads"])
                == len(sweeps.job_outputs(cfg, experiment, "RAW"))
            )
            assert {s.experiment for s in specs} == {experiment}
            assert [{"precision": s.precision, **s.params()["workload"]} for s in specs] == params[
                "workloads"
            ]
            assert "precision" not in params  # each configuration names its own
    # a causal LM job spans the precisions, precision first: one build per precision
    llm_job = job_params.job_params(
        cfg, "llm", {"target": "h100", "model": cfg["llm"]["models"][0]}
    )
    precisions = [w["precision"] for w in llm_job["workloads"]]
    assert list(dict.fromkeys(precisions)) == cfg["llm"]["precisions"]
    assert precisions == sorted(precisions, key=cfg["llm"]["precisions"].index)


def test_nested_numbers_given_on_the_command_line_are_numbers(tmp_path):
    # what Snakemake hands over for --config 'co2e={"pue": 1.2}': the nested value as a string
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["co2e"] = {"pue": "1.2", "grid_intensity_g_per_kwh": "300"}
    fm_config.validate(config, SCHEMA)
    assert config["co2e"]["pue"] == 1.2 and config["co2e"]["grid_intensity_g_per_kwh"] == 300
    config["co2e"] = {"pue": "high"}
    with pytest.raises(fm_config.ConfigError, match=r"co2e.pue.*'high'"):
        fm_config.validate(config, SCHEMA)
    # and through the real command line
    from conftest import Workflow

    wf = Workflow(tmp_path, yaml.safe_load((REPO / "config/config.yaml").read_text()))
    out = wf.run("-n", "--config", 'co2e={"pue": 1.2}')
    assert "is not of type" not in out.stdout + out.stderr
