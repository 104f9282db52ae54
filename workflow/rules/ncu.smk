# Nsight Compute FLOPs: one job per GPU target and precision runs the configured MLP configs,
# GEMMs and LLM shapes under ncu (GPU targets only); the merge reads those and the committed runs
# (`ncu.dirs`), classifies every launch and judges the GPU-adjusted formulas out of fold.


rule profile_ncu:
    output:
        table=paths.NCU,
        manifest=paths.NCU_MANIFEST,
    log:
        paths.NCU_LOG,
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **job_resources("target"),
    params:
        mlp=config["ncu"]["mlp"],
        gemm=config["ncu"]["gemm"],
        llm=config["ncu"]["llm"],
    script:
        "../scripts/profile_ncu.py"


rule merge_ncu:
    input:
        measured=expand(
            paths.NCU,
            target=config["ncu"]["targets"],
            precision=config["ncu"]["precisions"],
        ),
        reference=[repo_path(d) for d in config["ncu"]["dirs"]],
        code=library(
            "flopmetrics.ncu.parse", "flopmetrics.ncu.classify", "flopmetrics.ncu.gap"
        ),
    output:
        launches=paths.MERGED_NCU,
        gap=paths.NCU_GAP,
    log:
        "logs/merge/ncu.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        folds=config["ncu"]["folds"],
        seed=config["ncu"]["seed"],
    script:
        "../scripts/merge_ncu.py"
