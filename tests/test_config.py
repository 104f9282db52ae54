import copy
from pathlib import Path

import pytest
import yaml

from flopmetrics.contracts.experiments import BY_NAME
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
    other object the schema describes, list items and Slurm targets included."""
    cfg = default_config()
    del cfg["co2e"]["workloads"][0]["pass"]
    cfg["slurm"]["targets"]["h100"] = {"partition": "gpu"}
    fm_config.validate(cfg, SCHEMA)
    assert cfg["co2e"]["workloads"][0]["pass"] == "train_step"
    # and it runs: the CO2e table is computed for train_step

    from test_calibration_co2e import synthetic_fits

    from flopmetrics.analysis import co2e

    cal = synthetic_fits("h100", cfg["co2e"]["workloads"][0]["precision"], "train_step")
    row = co2e.estimate(cfg["co2e"]["workloads"][:1], cal, 1.5, 400).iloc[0]
    assert row["pass"] == "train_step" and row["status"] == "ok" and row["kwh"] > 0
    assert cfg["slurm"]["targets"]["h100"] == {
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
        (
            lambda c: c["co2e"].update(grid="XY"),
            "co2e.grid: grid 'XY' is not in the bundled table",
        ),
        (
            lambda c: c["co2e"].update(grid_intensity_g_per_kwh=300),
            "co2e.grid_intensity_source: co2e.grid_intensity_g_per_kwh 300 needs its source",
        ),
        (
            lambda c: c["co2e"].update(
                grid="DE", grid_intensity_g_per_kwh=300, grid_intensity_source="x"
            ),
            "co2e.grid: 'DE' and co2e.grid_intensity_g_per_kwh 300 are both set",
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


def test_configurations_and_job_params():
    cfg = fm_config.validate(default_config(), SCHEMA)
    mlp = cfg["mlp"]
    configurations = sweeps.configurations(cfg, "mlp")
    assert len(configurations) == len(mlp["targets"]) * len(mlp["precisions"]) * len(
        mlp["n"]
    ) * len(mlp["d"]) * len(mlp["m"])
    first = configurations[0]
    assert sweeps.files(cfg, "mlp")[0] == (
        f"results/raw/mlp/cpu/{first['precision']}/n{first['n']}_d{first['d']}_m{first['m']}.parquet"
    )
    wc = {"target": "cpu", "precision": "fp32", "n": "2", "d": "64", "m": "16"}
    params = job_params.job_params(cfg, "mlp", wc)
    # one job per configuration: its own sizes, as numbers, and nothing of the other values
    assert params["workload"] == {"n": 2, "d": 64, "m": 16} and params["precision"] == "fp32"
    assert params["measure"]["repeats"] == mlp["repeats"]
    # a CPU job has no sampler and no guards: editing those reruns GPU jobs only
    assert (
        params["energy"] == {**cfg["energy"], "sampler_hz": None, "guard_s": None}
        and "run_on_cpu" not in params
    )
    gpu = job_params.job_params(cfg, "mlp", {**wc, "target": "h100"})
    assert gpu["energy"] == cfg["energy"]
    # profiler_flops: auto = the thesis's slow counter on CPUs only
    assert mlp["profiler_flops"] == "auto"
    assert params["measure"]["profiler_flops"] is True and gpu["measure"]["profiler_flops"] is False
    # launch: the schema's default reaches every job, and a job of another launch is another job
    assert params["measure"]["launch"] == "eager"
    graphs = job_params.job_params(
        {**cfg, "mlp": {**mlp, "launch": "cuda_graph"}}, "mlp", {**wc, "target": "h100"}
    )
    assert graphs["measure"] == {**gpu["measure"], "launch": "cuda_graph"}
    # llm: auto by default on a GPU; a CPU has no graphs, so its jobs say eager (and do not rerun)
    assert cfg["llm"]["launch"] == "auto"
    model = cfg["llm"]["models"][0]
    llm_wc = {"model": model, "precision": "fp32", "batch_size": "2", "seq_len": "32"}
    h100 = job_params.job_params(cfg, "llm", {**llm_wc, "target": "h100"})
    assert h100["measure"]["launch"] == "auto"
    cpu = job_params.job_params(cfg, "llm", {**llm_wc, "target": "cpu"})
    assert cpu["measure"]["launch"] == "eager"
    assert cpu["workload"] == {
        "model": model,
        "batch_size": 2,
        "seq_len": 32,
        **{k: cfg["llm"][k] for k in ("passes", "attn_implementation", "attention_flops")},
    }
    # every experiment's params have the one shape of JobSpec, and a job's params do not
    # depend on the sweep lists: adding a value leaves every other configuration's alone
    from flopmetrics.jobs.spec import JobSpec

    for experiment in ("mlp", "llm", "matmul"):
        for wc in sweeps.configurations(cfg, experiment):
            params = job_params.job_params(cfg, experiment, {k: str(v) for k, v in wc.items()})
            spec = JobSpec.from_params(params)
            assert spec.experiment == experiment and spec.params() == params
        wider = copy.deepcopy(cfg)
        axis = BY_NAME[experiment].axes[-1]
        wider[experiment][axis.key] = [*wider[experiment][axis.key], 4096]
        old = {
            str(w): job_params.job_params(cfg, experiment, w)
            for w in sweeps.configurations(cfg, experiment)
        }
        for w in sweeps.configurations(wider, experiment):
            if str(w) in old:
                assert job_params.job_params(wider, experiment, w) == old[str(w)]


def test_nested_numbers_given_on_the_command_line_are_numbers(tmp_path):
    # what Snakemake hands over for --config 'co2e={"pue": 1.2}': the nested value as a string
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["co2e"] = {
        "pue": "1.2",
        "grid_intensity_g_per_kwh": "300",
        "grid_intensity_source": "the site's contract",
    }
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
