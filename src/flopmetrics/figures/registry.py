"""The figure registry: every figure of the pipeline is one entry here.

Adding a figure is its plot function plus one :class:`Figure` entry (and a caption file
``workflow/report/<name>.rst``); from the registry follow its Snakemake rule (``fig_<name>``,
built in ``workflow/rules/figures.smk``), its config block ``figures.<name>`` in the schema (its
``style`` properties, with their defaults, plus ``dpi``) and its place in the report.

A plot function is ``draw(tables, style, wildcards) -> matplotlib Figure``: ``tables`` maps each
input name to its DataFrame (``tables.paths`` to its file), ``style`` is the figure's config
block, ``wildcards`` the rule's wildcards. An entry names it as ``"<module>.<function>"`` of this
package, imported when the figure is drawn: reading the registry (validating a config, building
the DAG) loads no plotting library.
"""

from __future__ import annotations

from ..contracts import paths
from ..contracts.experiments import feeding, may_have_rows
from ..jobs.output import save_figure
from .entry import DPI, Figure, fixed
from .tables import Tables

MLP_CATEGORY, ENERGY_CATEGORY, CALIBRATION_CATEGORY = (
    "MLP FLOP validation",
    "Energy",
    "Calibration and CO2e",
)
NCU_CATEGORY = "Nsight Compute FLOPs"
SERVING_CATEGORY = "Inference"
CLASSES_CATEGORY = "Energy per operation class"


def _serving_enabled(config: dict) -> bool:
    return may_have_rows(config, "inference")


def _classes_enabled(config: dict) -> bool:
    return may_have_rows(config, "classes")


def _ncu_enabled(config: dict) -> bool:
    return bool(config["ncu"]["targets"] or config["ncu"]["dirs"])


FIGURES = (
    Figure(
        "mlp_pct_diff_heatmap",
        "mlp.pct_diff_heatmap",
        "results/figures/mlp/pct_diff_heatmap_{mlp_pass}.png",
        fixed(mlp=paths.MERGED_MLP),
        MLP_CATEGORY,
        {"figure": "counted vs analytic", "pass": "{mlp_pass}"},
        style={
            "cmap": {"type": "string", "default": "RdBu_r"},
            "annotate": {"type": "boolean", "default": True},
        },
        expand={"mlp_pass": ("forward", "backward")},
    ),
    Figure(
        "mlp_flops_vs_d",
        "mlp.flops_vs_d",
        "results/figures/mlp/flops_vs_d.png",
        fixed(mlp=paths.MERGED_MLP),
        MLP_CATEGORY,
        {"figure": "FLOPs vs d", "pass": "forward, backward"},
        style={
            "n": {"type": ["integer", "null"], "minimum": 1, "default": None},
            "m": {"type": ["integer", "null"], "minimum": 1, "default": None},
            "logy": {"type": "boolean", "default": True},
        },
    ),
    Figure(
        "mlp_throughput_vs_intensity",
        "mlp.throughput_vs_intensity",
        "results/figures/mlp/throughput_vs_intensity.png",
        fixed(mlp=paths.MERGED_MLP),
        MLP_CATEGORY,
        {"figure": "FLOP/s vs intensity", "pass": "forward, backward"},
        style={
            "logx": {"type": "boolean", "default": True},
            "logy": {"type": "boolean", "default": True},
        },
    ),
    Figure(
        "energy_efficiency",
        "energy.efficiency_bars",
        "results/figures/energy/energy_efficiency.png",
        fixed(energy=paths.MERGED_ENERGY),
        ENERGY_CATEGORY,
        {"figure": "TFLOPs/J per pass"},
        style={
            "experiment": {
                "type": "string",
                "enum": [e.name for e in feeding("energy")],
                "default": "llm",
            },
            "seq_len": {"type": ["integer", "null"], "default": None},
        },
    ),
    Figure(
        "forward_vs_backward",
        "energy.forward_vs_backward",
        "results/figures/energy/forward_vs_backward.png",
        fixed(energy=paths.MERGED_ENERGY),
        ENERGY_CATEGORY,
        {"figure": "forward vs backward"},
    ),
    Figure(
        "efficiency_vs_seq_len",
        "energy.efficiency_vs_seq_len",
        "results/figures/energy/efficiency_vs_seq_len.png",
        fixed(energy=paths.MERGED_ENERGY),
        ENERGY_CATEGORY,
        {"figure": "efficiency vs sequence length"},
        style={
            "passes": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {
                    "type": "string",
                    "enum": [
                        "forward",
                        "forward_train",
                        "backward",
                        "forward_backward",
                        "optimizer",
                        "train_step",
                    ],
                },
                "default": ["forward", "backward", "train_step"],
            }
        },
    ),
    Figure(
        "power_trace",
        "trace.power_trace",
        "results/figures/energy/power_trace.png",
        lambda config: {"trace": config["figures"]["power_trace"]["trace"] or []},
        ENERGY_CATEGORY,
        {"figure": "power trace"},
        style={"trace": {"type": ["string", "null"], "default": None}},
    ),
    Figure(
        "inference_j_per_token",
        "inference.j_per_token",
        "results/figures/inference/j_per_token.png",
        fixed(inference=paths.MERGED_INFERENCE),
        SERVING_CATEGORY,
        {"figure": "J per token vs batch size"},
        enabled=_serving_enabled,
    ),
    Figure(
        "inference_tokens_per_joule",
        "inference.tokens_per_joule",
        "results/figures/inference/tokens_per_joule.png",
        fixed(inference=paths.MERGED_INFERENCE),
        SERVING_CATEGORY,
        {"figure": "tokens per J by precision"},
        enabled=_serving_enabled,
    ),
    Figure(
        "class_energy_stacked",
        "classes.energy_stacked",
        "results/figures/classes/energy_stacked.png",
        fixed(classes=paths.CLASS_ENERGY),
        CLASSES_CATEGORY,
        {"figure": "J per iteration by class"},
        enabled=_classes_enabled,
    ),
    Figure(
        "class_work_per_joule",
        "classes.work_per_joule",
        "results/figures/classes/work_per_joule.png",
        fixed(classes=paths.CLASS_ENERGY),
        CLASSES_CATEGORY,
        {"figure": "FLOPs per J by class"},
        enabled=_classes_enabled,
    ),
    Figure(
        "calibration_parity",
        "calibration.calibration_parity",
        "results/figures/energy/calibration_parity.png",
        fixed(fits=paths.CALIBRATION, predictions=paths.PREDICTIONS),
        CALIBRATION_CATEGORY,
        {"figure": "calibration parity"},
    ),
    Figure(
        "co2e",
        "calibration.co2e_bars",
        "results/figures/energy/co2e.png",
        fixed(co2e=paths.CO2E),
        CALIBRATION_CATEGORY,
        {"figure": "CO2e"},
    ),
    Figure(
        "ncu_flops_by_class",
        "ncu.flops_by_class",
        "results/figures/ncu/flops_by_class.png",
        fixed(launches=paths.MERGED_NCU),
        NCU_CATEGORY,
        {"figure": "executed FLOPs by kernel class"},
        enabled=_ncu_enabled,
    ),
    Figure(
        "ncu_llm_classes",
        "ncu.llm_classes",
        "results/figures/ncu/llm_classes.png",
        fixed(classes=paths.NCU_CLASSES),
        NCU_CATEGORY,
        {"figure": "executed FLOPs per operation class of a train step"},
        enabled=lambda config: bool(config["ncu"]["class_dirs"]),
    ),
    Figure(
        "ncu_gap_heatmap",
        "ncu.gap_heatmap",
        "results/figures/ncu/gap_heatmap.png",
        fixed(gap=paths.NCU_GAP),
        NCU_CATEGORY,
        {"figure": "executed vs analytic over (d, m)"},
        enabled=_ncu_enabled,
        style={
            "precision": {
                "type": "string",
                "enum": ["fp32", "tf32", "fp16", "bf16"],
                "default": "bf16",
            },
            "pass": {"type": "string", "enum": ["forward", "backward"], "default": "forward"},
            "cmap": {"type": "string", "default": "magma_r"},
        },
    ),
    Figure(
        "ncu_parity",
        "ncu.parity",
        "results/figures/ncu/parity.png",
        fixed(gap=paths.NCU_GAP),
        NCU_CATEGORY,
        {"figure": "GPU-adjusted formulas: predicted vs executed"},
        enabled=_ncu_enabled,
    ),
    Figure(
        "distributed_scaling",
        "distributed.scaling",
        "results/figures/energy/distributed_scaling.png",
        fixed(scaling=paths.SCALING),
        ENERGY_CATEGORY,
        {"figure": "scaling from 1 to N GPUs"},
    ),
    Figure(
        "thesis_vs_ours",
        "thesis.thesis_vs_ours",
        "results/figures/energy/thesis_vs_ours.png",
        fixed(thesis=paths.MERGED_THESIS, energy=paths.MERGED_ENERGY),
        ENERGY_CATEGORY,
        {"figure": "thesis vs ours"},
        enabled=lambda config: config["thesis"]["architecture_dir"] is not None,
        extra_style=lambda config: {"gpu": config["thesis"]["compare_gpu"]},
    ),
)
BY_NAME = {f.name: f for f in FIGURES}


def style_schema() -> dict:
    """The ``figures`` block of the config schema: one object per figure, unknown keys refused."""
    return {
        f.name: {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {**f.style, "dpi": DPI},
        }
        for f in FIGURES
    }


def enabled(config: dict) -> list[Figure]:
    return [f for f in FIGURES if f.enabled(config)]


def render(name: str, inputs: dict[str, str], style: dict, wildcards: dict, output: str) -> None:
    """Draw figure ``name`` from its input files and save it atomically to ``output``."""
    fig = BY_NAME[name].plot_function()(Tables(inputs), style, wildcards)
    save_figure(fig, output, dpi=style["dpi"], bbox_inches="tight")
