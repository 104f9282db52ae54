# Merge per-job parquet files into one table per experiment.


rule merge_mlp:
    input:
        mlp_raw_files(),
    output:
        "results/merged/mlp.parquet",
    log:
        "logs/merge/mlp.log",
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/merge.py"


rule merge_energy:
    input:
        measured=energy_raw_files(),
        reference=reference_files(),
    output:
        "results/merged/energy.parquet",
    log:
        "logs/merge/energy.log",
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/merge_energy.py"


rule import_thesis:
    input:
        lambda wc: repo_path(config["thesis"]["architecture_dir"]),
    output:
        "results/merged/thesis.parquet",
    log:
        "logs/merge/thesis.log",
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/import_thesis.py"
