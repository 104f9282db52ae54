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


rule fig_energy_efficiency:
    input:
        energy="results/merged/energy.parquet",
    output:
        report(
            "results/figures/energy/energy_efficiency.png",
            caption="../report/energy_efficiency.rst",
            category="Energy",
            labels={"figure": "TFLOPs/J per pass"},
        ),
    log:
        "logs/figures/energy_efficiency.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="energy_efficiency",
        style=FIGURES["energy_efficiency"],
    script:
        "../scripts/plot_energy.py"


rule fig_forward_vs_backward:
    input:
        energy="results/merged/energy.parquet",
    output:
        report(
            "results/figures/energy/forward_vs_backward.png",
            caption="../report/forward_vs_backward.rst",
            category="Energy",
            labels={"figure": "forward vs backward"},
        ),
    log:
        "logs/figures/forward_vs_backward.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="forward_vs_backward",
        style=FIGURES["forward_vs_backward"],
    script:
        "../scripts/plot_energy.py"


rule fig_efficiency_vs_seq_len:
    input:
        energy="results/merged/energy.parquet",
    output:
        report(
            "results/figures/energy/efficiency_vs_seq_len.png",
            caption="../report/efficiency_vs_seq_len.rst",
            category="Energy",
            labels={"figure": "efficiency vs sequence length"},
        ),
    log:
        "logs/figures/efficiency_vs_seq_len.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="efficiency_vs_seq_len",
        style=FIGURES["efficiency_vs_seq_len"],
    script:
        "../scripts/plot_energy.py"


rule fig_power_trace:
    input:
        trace=power_trace_input(),
    output:
        report(
            "results/figures/energy/power_trace.png",
            caption="../report/power_trace.rst",
            category="Energy",
            labels={"figure": "power trace"},
        ),
    log:
        "logs/figures/power_trace.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="power_trace",
        style=FIGURES["power_trace"],
    script:
        "../scripts/plot_energy.py"


rule fig_calibration_parity:
    input:
        fits="results/calibration/calibration.parquet",
        predictions="results/calibration/predictions.parquet",
    output:
        report(
            "results/figures/energy/calibration_parity.png",
            caption="../report/calibration_parity.rst",
            category="Calibration and CO2e",
            labels={"figure": "calibration parity"},
        ),
    log:
        "logs/figures/calibration_parity.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="calibration_parity",
        style=FIGURES["calibration_parity"],
    script:
        "../scripts/plot_energy.py"


rule fig_co2e:
    input:
        co2e="results/co2e/co2e.parquet",
    output:
        report(
            "results/figures/energy/co2e.png",
            caption="../report/co2e.rst",
            category="Calibration and CO2e",
            labels={"figure": "CO2e"},
        ),
    log:
        "logs/figures/co2e.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="co2e",
        style=FIGURES["co2e"],
    script:
        "../scripts/plot_energy.py"


rule fig_thesis_vs_ours:
    input:
        thesis="results/merged/thesis.parquet",
        energy="results/merged/energy.parquet",
    output:
        report(
            "results/figures/energy/thesis_vs_ours.png",
            caption="../report/thesis_vs_ours.rst",
            category="Energy",
            labels={"figure": "thesis vs ours"},
        ),
    log:
        "logs/figures/thesis_vs_ours.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        figure="thesis_vs_ours",
        style=lambda wc: {
            **FIGURES["thesis_vs_ours"],
            "gpu": config["thesis"]["compare_gpu"],
        },
    script:
        "../scripts/plot_energy.py"
