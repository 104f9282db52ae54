# Nsight Compute FLOPs: one job per GPU target and precision (profile.smk, runner "ncu") runs
# the configured MLP configs, GEMMs and LLM shapes under ncu; here those and the committed runs
# (`ncu.dirs`) are merged, every launch classified and the GPU-adjusted formulas judged out of fold,
# and, where a kernel-choice table (`ncu.choice`) holds a config's calls, its prediction from them.


rule ncu_classes:
    input:
        runs=[repo_path(d) for d in config["ncu"]["class_dirs"]],
        code=library("flopmetrics.ncu.classes"),
    output:
        table=paths.NCU_CLASSES,
        csv=paths.NCU_CLASSES_TABLE,
    log:
        "logs/merge/ncu_classes.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/ncu_classes.py"


rule merge_ncu:
    input:
        measured=sweeps.files(config, "ncu"),
        reference=[repo_path(d) for d in config["ncu"]["dirs"]],
        choice=[repo_path(d) for d in config["ncu"]["choice"]],
        code=library(
            "flopmetrics.ncu.parse",
            "flopmetrics.ncu.classify",
            "flopmetrics.ncu.gap",
            "flopmetrics.ncu.validation",
            "flopmetrics.ncu.executed",
            "flopmetrics.ncu.kernels",
            "flopmetrics.ncu.choice",
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
