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
