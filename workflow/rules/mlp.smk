# One profiling job per (target, precision) measuring every (n, d, m) in one process: FLOPs
# three ways + synchronized timing (+ energy where a meter exists), one parquet per size.


rule profile_mlp:
    output:
        tables=sweeps.job_outputs(config, "mlp", "RAW"),
        traces=sweeps.job_outputs(config, "mlp", "TRACE"),
    log:
        paths.LOG["mlp"],
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("target"),
    params:
        job=job_params("mlp"),
    script:
        "../scripts/profile.py"
