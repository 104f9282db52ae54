# Energy measurement jobs: a Hugging Face causal LM and a square matmul per target
# (cpu, cuda or a GPU architecture label), precision and size.


rule profile_llm:
    output:
        table=paths.RAW["llm"],
        trace=paths.TRACE["llm"],
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
        table=paths.RAW["matmul"],
        trace=paths.TRACE["matmul"],
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
