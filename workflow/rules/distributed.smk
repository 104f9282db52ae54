# Distributed jobs: one job per (target, model, precision, strategy, scaling, world size,
# batch size, sequence length) runs its ranks on one node through torchrun, one GPU per rank,
# and writes the node's rows (raw), every rank's rows, windows and raw power trace.


rule profile_distributed:
    output:
        node=paths.RAW["distributed"],
        ranks=paths.RANKS,
        windows=paths.WINDOWS,
        traces=paths.TRACE["distributed"],
    log:
        paths.LOG["distributed"],
    conda:
        "../../envs/flopmetrics.yaml"
    resources:
        **distributed_resources(),
    params:
        job=lambda wc: flopmetrics.jobs.params.distributed_params(config, wc),
    script:
        "../scripts/profile_distributed.py"


rule merge_ranks:
    input:
        measured=sweeps.ranks_files(config),
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
        csv=report(
            paths.SCALING_TABLE,
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
