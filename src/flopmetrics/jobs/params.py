"""A profiling job's parameters, built from the config and the job's wildcards: the one shape
:class:`flopmetrics.jobs.spec.JobSpec` reads back, which reaches the job through ``params:`` (so
editing a value reruns exactly the jobs that use it)."""

from __future__ import annotations

import itertools

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


def model_specs(config: dict, experiment: str = "llm") -> dict:
    """Model wildcard name -> spec (preset name, config.json path or inline mapping)."""
    return {resolve(spec)[0]: spec for spec in config[experiment]["models"]}


def energy_params(energy: dict, target: str) -> dict:
    """The energy settings a job on ``target`` uses: a CPU job has no sampler and no guards, so
    editing those reruns the GPU jobs only."""
    return {
        k: (None if target == "cpu" and k in GPU_ONLY_ENERGY_KEYS else energy[k])
        for k in ENERGY_KEYS
    }


def configurations(config: dict, experiment: str) -> list[dict]:
    """What one job of ``experiment`` measures, in the one order both its outputs and its params'
    workloads follow: the product of its size lists; a causal LM job's also spans the precisions
    (precision first, so the model is built once per precision): each job process pays its start,
    transformers' import (``benchmarks/first_use.py``) and first use once."""
    section = config[experiment]
    if experiment == "mlp":
        lists = {k: section[k] for k in ("n", "d", "m")}
    elif experiment == "llm":
        lists = {
            "precision": section["precisions"],
            "batch_size": section["batch_size"],
            "seq_len": section["seq_len"],
        }
    else:
        lists = {"size": section["sizes"]}
    return [dict(zip(lists, v)) for v in itertools.product(*lists.values())]


def job_params(config: dict, experiment: str, wildcards) -> dict:
    """Everything one profiling job needs; exactly this reaches the job via ``params``: the
    shared settings and one ``workload`` per configuration it measures, each naming its
    precision (:mod:`flopmetrics.jobs.spec`)."""
    wc = dict(wildcards)
    workloads = configurations(config, experiment)
    if experiment == "llm":
        workloads = [
            {
                "precision": c["precision"],
                **_lm_workload(
                    config, "llm", wc["model"], {k: c[k] for k in ("batch_size", "seq_len")}
                ),
            }
            for c in workloads
        ]
    else:
        workloads = [{"precision": wc["precision"], **c} for c in workloads]
    return _job(config, experiment, experiment, wc, "workloads", workloads)


def distributed_params(config: dict, wildcards) -> dict:
    """Everything one distributed job needs (:func:`flopmetrics.distributed.launch.run`): how
    many ranks, the strategy and scaling, and the one job shape for the workload every rank
    builds (``batch_size`` per rank under weak scaling, in all under strong)."""
    wc = dict(wildcards)
    ds = config["distributed"]
    size = {"batch_size": int(wc["batch_size"]), "seq_len": int(wc["seq_len"])}
    job = _job(
        config,
        "distributed",
        "llm",
        wc,
        "workload",
        _lm_workload(config, "distributed", wc["model"], size),
    )
    # the timeouts are the rule's resources (distributed_resources): editing one reruns nothing
    return {
        "world_size": int(wc["world_size"]),
        "strategy": wc["strategy"],
        "scaling": wc["scaling"],
        "zeus": ds["zeus"],
        "profile_iterations": ds["profile_iterations"],
        "job": job,
    }


# a distributed job's timeouts: the rule's resources, not its params (they change no measurement)
TIMEOUTS = ("timeout_s", "collective_timeout_s")

LM_KEYS = (
    "passes",
    "attn_implementation",
    "attention_flops",
)  # what a causal LM job builds, beside its size


def _lm_workload(config: dict, section: str, model: str, size: dict) -> dict:
    """One causal LM workload of config ``section`` (``llm`` or ``distributed``)."""
    return {
        "model": model_specs(config, section)[model],
        **size,
        **{k: config[section][k] for k in LM_KEYS},
    }


def _job(config: dict, section: str, experiment: str, wc: dict, key: str, work) -> dict:
    """The one job shape (:mod:`flopmetrics.jobs.spec`): ``work`` under ``key`` (``workloads`` or
    ``workload``) and the measuring and energy settings of config ``section``."""
    target = wc["target"]
    measure = {k: config[section][k] for k in MEASURE_KEYS if k in config[section]}
    measure.setdefault(
        "profiler_flops", False
    )  # an experiment without the key has no profiler count
    measure.setdefault(
        "launch", "eager"
    )  # distributed: the ranks of one step are not replayed from a graph
    if (
        measure["profiler_flops"] == "auto"
    ):  # the thesis's slow counter: on CPUs, off where GPU time is paid for
        measure["profiler_flops"] = target == "cpu"
    if (
        measure["launch"] == "auto" and target == "cpu"
    ):  # no graphs on a CPU: its jobs' params say what runs
        measure["launch"] = "eager"
    params = {"experiment": experiment, "target": target}
    if key == "workload":  # one configuration; a batch's workloads each name their precision
        params["precision"] = wc["precision"]
    params.update(
        {key: work, "measure": measure, "energy": energy_params(config["energy"], target)}
    )
    if config["execution"]["run_on_cpu"]:
        params["run_on_cpu"] = (
            True  # only when on: turning it on reruns exactly the jobs it changes
        )
    return params
