# Distributed jobs (profile.smk, runner "ranks": torchrun starts the ranks on one node, one GPU
# each) write the node's rows, every rank's rows, windows and raw power trace; here the ranks'
# rows are merged and the scaling table made.


rule merge_ranks:
    input:
        measured=sweeps.table_files(config, "ranks"),
        reference=reference_files("ranks"),
        code=library("flopmetrics.analysis.merge"),
    output:
        paths.MERGED_RANKS,
    log:
        "logs/merge/ranks.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/merge_ranks.py"


rule distributed_scaling:
    input:
        energy=paths.MERGED_ENERGY,
        code=library("flopmetrics.analysis.scaling"),
    output:
        table=paths.SCALING,
        csv=paths.SCALING_TABLE,
        html=report(
            paths.SCALING_HTML,
            caption="../report/distributed_scaling_table.rst",
            category="Energy",
            labels={"table": "scaling from 1 to N GPUs"},
        ),
    log:
        "logs/analysis/distributed_scaling.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/distributed_scaling.py"
