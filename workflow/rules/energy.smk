# Energy measurement jobs: a Hugging Face causal LM and a square matmul per target
# (cpu, cuda or a GPU architecture label), precision and size.


rule profile_llm:
    output:
        table="results/raw/llm/{target}/{model}/{precision}/b{batch}_s{seq}.parquet",
        trace="results/traces/llm/{target}/{model}/{precision}/b{batch}_s{seq}.parquet",
    log:
        "logs/llm/{target}/{model}/{precision}/b{batch}_s{seq}.log",
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("target"),
    params:
        job=lambda wc: fm_config.llm_job_params(
            config, wc.target, wc.model, wc.precision, wc.batch, wc.seq
        ),
    script:
        "../scripts/profile_energy.py"


rule profile_matmul:
    output:
        table="results/raw/matmul/{target}/{precision}/n{size}.parquet",
        trace="results/traces/matmul/{target}/{precision}/n{size}.parquet",
    log:
        "logs/matmul/{target}/{precision}/n{size}.log",
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("target"),
    params:
        job=lambda wc: fm_config.matmul_job_params(
            config, wc.target, wc.precision, wc.size
        ),
    script:
        "../scripts/profile_energy.py"
