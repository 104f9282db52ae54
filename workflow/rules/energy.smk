# Energy measurement jobs: a Hugging Face causal LM per (target, model), measuring every
# precision, batch size and sequence length with one model build per precision (one process
# start and import for them all), and a square matmul per (target, precision) measuring every
# size; one parquet per configuration. Targets: cpu, cuda or a GPU label.


rule profile_llm:
    output:
        tables=sweeps.job_outputs(config, "llm", "RAW"),
        traces=sweeps.job_outputs(config, "llm", "TRACE"),
    log:
        paths.LOG["llm"],
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("target"),
    params:
        job=job_params("llm"),
    script:
        "../scripts/profile.py"


rule profile_matmul:
    output:
        tables=sweeps.job_outputs(config, "matmul", "RAW"),
        traces=sweeps.job_outputs(config, "matmul", "TRACE"),
    log:
        paths.LOG["matmul"],
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("target"),
    params:
        job=job_params("matmul"),
    script:
        "../scripts/profile.py"
