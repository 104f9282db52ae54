# One profiling rule per registered experiment (flopmetrics.contracts.experiments), one job per
# configuration: adding a value to a sweep list schedules exactly the new configurations. A
# job's whole configuration reaches it through params, so an edit reruns what it affects.
# A configuration of a single device is measured by the long-lived worker of its settings
# (flopmetrics.jobs.worker), which pays process start, imports, meters and idle baseline once;
# its job is a thin client (a shell command: no Snakemake import per job).


for experiment in sweeps.experiments_run(config, runner="single"):

    rule:
        name:
            f"profile_{experiment.name}"
        output:
            **experiment.outputs(),
        log:
            experiment.log(),
        priority: measuring_priority(experiment)
        conda:
            "../../envs/flopmetrics.yaml"
        resources:
            **job_resources("target"),
        params:
            job=profile_params(experiment),
        shell:
            f"{PYTHON} -m flopmetrics.jobs.client {{params.job:q}} {{log:q}} "
            "table={output.table:q} trace={output.trace:q}"


for experiment in sweeps.experiments_run(config, runner="ranks"):

    rule:
        name:
            f"profile_{experiment.name}"
        output:
            **experiment.outputs(),
        log:
            experiment.log(),
        conda:
            "../../envs/flopmetrics.yaml"
        resources:
            **distributed_resources(),
        params:
            job=profile_params(experiment),
        script:
            "../scripts/profile_distributed.py"


for experiment in sweeps.experiments_run(config, runner="ncu"):

    rule:
        name:
            f"profile_{experiment.name}"
        output:
            **experiment.outputs(),
        log:
            experiment.log(),
        conda:
            "../../envs/flopmetrics.yaml"
        resources:
            **job_resources("target"),
        params:
            job=profile_params(experiment),
        script:
            "../scripts/profile_ncu.py"
