# Validation and helpers shared by all rules. Logic lives in the flopmetrics package.
from pathlib import Path

from flopmetrics import config as fm_config

fm_config.validate(
    config,
    fm_config.load_schema(
        Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    ),
)
if config["execution"]["check_devices"]:
    fm_config.check_devices(config["mlp"]["devices"])

MLP = config["mlp"]
FIGURES = config["figures"]
MLP_PASSES = ["forward", "backward"]


wildcard_constraints:
    device=r"cpu|cuda(:\d+)?",
    dtype="fp32|tf32|fp16|bf16",
    n=r"\d+",
    d=r"\d+",
    m=r"\d+",
    mlp_pass="forward|backward",


def mlp_raw_files():
    return [
        "results/raw/mlp/{device}/{dtype}/n{n}_d{d}_m{m}.parquet".format(**job)
        for job in fm_config.mlp_grid(MLP)
    ]


def mlp_figures():
    return [
        *expand("results/figures/mlp/pct_diff_heatmap_{p}.png", p=MLP_PASSES),
        "results/figures/mlp/flops_vs_d.png",
        "results/figures/mlp/throughput_vs_intensity.png",
    ]


def all_targets():
    return ["results/merged/mlp.parquet", *mlp_figures()]
