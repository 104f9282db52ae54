# Merge per-job parquet files into one table per experiment.


rule merge_mlp:
    input:
        tables=sweeps.table_files(config, "mlp"),
        code=library("flopmetrics.analysis.merge"),
    output:
        paths.MERGED_MLP,
    log:
        "logs/merge/mlp.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        sweep=sweeps.merge_config(config, "mlp"),
    script:
        "../scripts/merge.py"


rule merge_energy:
    input:
        measured=sweeps.table_files(config, "energy"),
        reference=reference_files(table="energy"),
        code=library("flopmetrics.analysis.merge", "flopmetrics.analysis.scatter"),
    output:
        paths.MERGED_ENERGY,
    log:
        "logs/merge/energy.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        table="energy",
        sweep=sweeps.merge_config(config, "energy"),
    script:
        "../scripts/merge_energy.py"


rule merge_inference:
    input:
        measured=sweeps.table_files(config, "inference"),
        reference=reference_files(table="inference"),
        code=library("flopmetrics.analysis.merge", "flopmetrics.analysis.scatter"),
    output:
        paths.MERGED_INFERENCE,
    log:
        "logs/merge/inference.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        table="inference",
        sweep=sweeps.merge_config(config, "inference"),
    script:
        "../scripts/merge_energy.py"


rule merge_classes:
    input:
        measured=sweeps.table_files(config, "classes"),
        reference=reference_files(table="classes"),
        code=library("flopmetrics.analysis.merge", "flopmetrics.analysis.scatter"),
    output:
        paths.MERGED_CLASSES,
    log:
        "logs/merge/classes.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        table="classes",
        sweep=sweeps.merge_config(config, "classes"),
    script:
        "../scripts/merge_energy.py"


rule import_thesis:
    input:
        architecture=lambda wc: repo_path(config["thesis"]["architecture_dir"]),
        code=library(
            "flopmetrics.analysis.thesis", "flopmetrics.analysis.thesis.readings"
        ),
    output:
        rows=paths.MERGED_THESIS,
        readings=paths.THESIS_READINGS,
    log:
        "logs/merge/thesis.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/import_thesis.py"


rule coverage:
    input:
        mlp=paths.MERGED_MLP,
        energy=paths.MERGED_ENERGY,
        code=library("flopmetrics.analysis.coverage"),
    output:
        csv=paths.COVERAGE_TABLE,
        html=report(
            paths.COVERAGE_HTML,
            caption="../report/coverage_table.rst",
            category="Energy",
            labels={"table": "coverage"},
        ),
    log:
        "logs/merge/coverage.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/coverage.py"
