"""A profiling job's parameters, built from the config and the job's wildcards: one configuration
in the one shape :class:`flopmetrics.jobs.spec.JobSpec` reads back. It reaches the job through
``params:``, so editing a value reruns exactly the configurations that use it; nothing in it
depends on the sweep lists (adding a value to a list changes no other configuration's
parameters, nor the ``config_hash`` of its rows)."""

from __future__ import annotations

from ..contracts.experiments import BY_NAME, Experiment
from ..flops.models import resolve

# config keys of an experiment that say how to measure (the rest say what to build)
MEASURE_KEYS = (
    "repeats",
    "min_repeats",
    "target_rse",
    "min_window_s",
    "warmup_iterations",
    "seed",
    "profiler_flops",
    "launch",
)
ENERGY_KEYS = ("meter", "sampler_hz", "guard_s", "idle_baseline_s")
GPU_ONLY_ENERGY_KEYS = ("sampler_hz", "guard_s")  # no sampler and no guards on a CPU
# a distributed job's timeouts: the rule's resources, not its params (they change no measurement)
TIMEOUTS = ("timeout_s", "collective_timeout_s")
# what the ranks runner takes beside its configuration
RANKS_KEYS = ("zeus", "profile_iterations")


def model_specs(section: dict) -> dict:
    """Model name (the wildcard) -> spec (preset name, config.json path or inline mapping)."""
    return {resolve(spec)[0]: spec for spec in section["models"]}


def energy_params(energy: dict, target: str) -> dict:
    """The energy settings a job on ``target`` uses: a CPU job has no sampler and no guards, so
    editing those reruns the GPU jobs only."""
    return {
        k: (None if target == "cpu" and k in GPU_ONLY_ENERGY_KEYS else energy[k])
        for k in ENERGY_KEYS
    }


def measure_params(section: dict, target: str) -> dict:
    """How a job of ``section`` on ``target`` measures: what its jobs' params say runs."""
    measure = {k: section[k] for k in MEASURE_KEYS if k in section}
    # a section without the key: no profiler count, every pass eager (a distributed step)
    measure.setdefault("profiler_flops", False)
    measure.setdefault("launch", "eager")
    if measure["profiler_flops"] == "auto":  # the thesis's slow counter: on CPUs only
        measure["profiler_flops"] = target == "cpu"
    if measure["launch"] == "auto" and target == "cpu":  # no graphs on a CPU
        measure["launch"] = "eager"
    return measure


def workload(experiment: Experiment, section: dict, wildcards: dict) -> dict:
    """What one configuration's workload is built from: its axes (a model by its spec) and the
    section's ``build_keys``."""
    out = {}
    for axis in experiment.axes:
        if axis.name not in experiment.workload_axes:
            continue
        value = wildcards[axis.name]
        if axis.models:
            out[axis.name] = model_specs(section)[value]
        else:
            out[axis.name] = int(value) if axis.pattern == r"\d+" else value
    return {**out, **{k: section[k] for k in experiment.build_keys}}


def job_params(config: dict, experiment: str | Experiment, wildcards) -> dict:
    """Everything the job of one configuration needs (:mod:`flopmetrics.jobs.spec`); a
    distributed job's adds its ranks' settings (:func:`ranks_params`)."""
    e = experiment if isinstance(experiment, Experiment) else BY_NAME[experiment]
    wc, section = dict(wildcards), config[e.name]
    target = wc["target"]
    params = {
        "experiment": e.name,
        "target": target,
        "precision": wc["precision"],
        "workload": workload(e, section, wc),
        "measure": measure_params(section, target),
        "energy": energy_params(config["energy"], target),
    }
    if config["execution"]["run_on_cpu"]:
        # only when on: turning it on reruns exactly the jobs it changes
        params["run_on_cpu"] = True
    if e.runner == "ranks":
        return ranks_params(section, wc, params)
    return params


def ranks_params(section: dict, wildcards: dict, job: dict) -> dict:
    """A distributed job's parameters (:func:`flopmetrics.distributed.launch.run`): how many
    ranks, the strategy and scaling, the ranks' settings and the job of the workload every rank
    builds (``batch_size`` per rank under weak scaling, in all under strong)."""
    return {
        "world_size": int(wildcards["world_size"]),
        "strategy": wildcards["strategy"],
        "scaling": wildcards["scaling"],
        **{k: section[k] for k in RANKS_KEYS},
        "job": job,
    }


def ncu_params(config: dict, wildcards) -> dict:
    """What an Nsight Compute job captures (config ``ncu``: the MLP configs, GEMMs, LM shapes)."""
    section = config["ncu"]
    return {k: section[k] for k in BY_NAME["ncu"].build_keys}


def job_name(params: dict) -> str:
    """A configuration's name in logs and rows: experiment, target, precision and its workload's
    plain values."""
    what = " ".join(f"{k}={v}" for k, v in params["workload"].items() if isinstance(v, (int, str)))
    return f"{params['experiment']} {params['target']} {params['precision']} {what}"


def recorded_config(params: dict) -> dict:
    """What the rows of the job of ``params`` record as their configuration (``config_json``,
    hashed into ``config_hash``): its parameters and its name."""
    return {**params, "job_name": job_name(params)}
