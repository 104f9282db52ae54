# One rule per figure, one output file per figure; each figure's style comes via params.


rule fig_mlp_pct_diff_heatmap:
    input:
        rules.merge_mlp.output,
    output:
        report(
            "results/figures/mlp/pct_diff_heatmap_{mlp_pass}.png",
            caption="../report/mlp_pct_diff_heatmap.rst",
            category="MLP FLOP validation",
            labels={"figure": "counted vs analytic", "pass": "{mlp_pass}"},
        ),
    log:
        "logs/figures/mlp_pct_diff_heatmap_{mlp_pass}.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="pct_diff_heatmap",
        style=FIGURES["mlp_pct_diff_heatmap"],
    script:
        "../scripts/plot_mlp.py"


rule fig_mlp_flops_vs_d:
    input:
        rules.merge_mlp.output,
    output:
        report(
            "results/figures/mlp/flops_vs_d.png",
            caption="../report/mlp_flops_vs_d.rst",
            category="MLP FLOP validation",
            labels={"figure": "FLOPs vs d", "pass": "forward, backward"},
        ),
    log:
        "logs/figures/mlp_flops_vs_d.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="flops_vs_d",
        style=FIGURES["mlp_flops_vs_d"],
    script:
        "../scripts/plot_mlp.py"


rule fig_mlp_throughput_vs_intensity:
    input:
        rules.merge_mlp.output,
    output:
        report(
            "results/figures/mlp/throughput_vs_intensity.png",
            caption="../report/mlp_throughput_vs_intensity.rst",
            category="MLP FLOP validation",
            labels={"figure": "FLOP/s vs intensity", "pass": "forward, backward"},
        ),
    log:
        "logs/figures/mlp_throughput_vs_intensity.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="throughput_vs_intensity",
        style=FIGURES["mlp_throughput_vs_intensity"],
    script:
        "../scripts/plot_mlp.py"
