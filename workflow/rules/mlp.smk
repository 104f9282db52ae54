# One profiling job per (device, dtype, n, d, m): FLOPs three ways + synchronized timing
# (+ energy on GPUs).


rule profile_mlp:
    output:
        table="results/raw/mlp/{device}/{dtype}/n{n}_d{d}_m{m}.parquet",
        trace="results/traces/mlp/{device}/{dtype}/n{n}_d{d}_m{m}.parquet",
    log:
        "logs/mlp/{device}/{dtype}/n{n}_d{d}_m{m}.log",
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("device"),
    params:
        job=lambda wc: fm_config.mlp_job_params(
            MLP,
            wc.device,
            wc.dtype,
            wc.n,
            wc.d,
            wc.m,
            config["energy"],
            config["execution"]["run_on_cpu"],
        ),
    script:
        "../scripts/profile_mlp.py"
