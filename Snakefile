# flopmetrics: FLOPs and energy of ML passes, measured honestly.
# Run: snakemake -c all          (embedded default: config/config.yaml)
#      snakemake --report results/report.html


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# cheap steps run on the submitting host, never as cluster jobs
localrules:
    all,
    merge_mlp,
    merge_energy,
    import_thesis,
    calibrate,
    co2e,
    fig_mlp_pct_diff_heatmap,
    fig_mlp_flops_vs_d,
    fig_mlp_throughput_vs_intensity,
    fig_energy_efficiency,
    fig_forward_vs_backward,
    fig_efficiency_vs_seq_len,
    fig_power_trace,
    fig_calibration_parity,
    fig_co2e,
    fig_thesis_vs_ours,


include: "workflow/rules/mlp.smk"
include: "workflow/rules/energy.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
