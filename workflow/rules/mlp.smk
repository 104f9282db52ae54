# One profiling job per (device, dtype, n, d, m): FLOPs three ways + synchronized timing
# (+ energy where a meter exists).


rule profile_mlp:
    output:
        table=paths.RAW["mlp"],
        trace=paths.TRACE["mlp"],
    log:
        paths.LOG["mlp"],
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("device"),
    params:
        job=job_params("mlp"),
    script:
        "../scripts/profile.py"
