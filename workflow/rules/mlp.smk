# One profiling job per (target, precision, n, d, m): FLOPs three ways + synchronized timing
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
        **job_resources("target"),
    params:
        job=job_params("mlp"),
    script:
        "../scripts/profile.py"
