"""Expand the config's sweeps into configurations and their files, from the experiment registry
(:mod:`flopmetrics.contracts.experiments`): one profiling job per configuration, whose
parameters come from :mod:`flopmetrics.jobs.params`."""

from __future__ import annotations

import itertools

from ..contracts.experiments import BY_NAME, EXPERIMENTS, Experiment, feeding
from ..flops.models import resolve
from ..jobs.params import job_params, recorded_config


def experiment_of(experiment: str | Experiment) -> Experiment:
    return experiment if isinstance(experiment, Experiment) else BY_NAME[experiment]


def axis_values(section: dict, axis) -> list:
    """The values of one axis (a model axis: the models' names, its files' wildcard)."""
    values = section.get(axis.key, [])
    return [resolve(v)[0] for v in values] if axis.models else list(values)


def configurations(config: dict, experiment: str | Experiment) -> list[dict]:
    """Wildcard values of every configuration of ``experiment``, in the order its jobs run
    (the product of its axes; none where its section has no targets)."""
    e = experiment_of(experiment)
    section = config.get(e.name, {})
    if not section.get("targets"):
        return []
    names = [a.name for a in e.axes]
    lists = [axis_values(section, a) for a in e.axes]
    return [dict(zip(names, v, strict=True)) for v in itertools.product(*lists)]


def files(config: dict, experiment: str | Experiment, output: str = "table") -> list[str]:
    """The ``output`` file of every configuration of ``experiment``."""
    template = experiment_of(experiment).outputs()[output]
    return [template.format(**w) for w in configurations(config, experiment)]


def table_files(config: dict, table: str) -> list[str]:
    """The per-configuration files whose rows join merged table ``table`` (the energy table
    leaves out the CPU rows of experiments that say so: the MLP's)."""
    out = []
    for e in feeding(table):
        output = "ranks" if table == "ranks" else "table"
        for w in configurations(config, e):
            if joins(e, table, w["target"]):
                out.append(e.outputs()[output].format(**w))
    return out


def joins(experiment: Experiment, table: str, target: str) -> bool:
    """Whether the rows of ``experiment`` on ``target`` join merged table ``table``."""
    return not (table == "energy" and not experiment.cpu_energy and target == "cpu")


def experiments_run(config: dict, runner: str | None = None) -> list[Experiment]:
    """The experiments this config runs (their sections have targets), of ``runner`` if given."""
    return [
        e
        for e in EXPERIMENTS
        if config.get(e.name, {}).get("targets") and runner in (None, e.runner)
    ]


def expected_configs(config: dict, table: str) -> dict[str, dict]:
    """File -> the configuration that should have made it, for each per-configuration file of
    merged table ``table`` whose experiment runs one configuration per job; the merge checks
    each file's rows against it."""
    out = {}
    for e in feeding(table):
        if e.runner != "single":
            continue
        for w in configurations(config, e):
            out[e.outputs()["table"].format(**w)] = recorded_config(job_params(config, e, w))
    return out


def merge_config(config: dict, table: str) -> dict:
    """The config sections the merge of ``table`` reads to know what should have made each
    file (:func:`expected_configs`): those of the one-configuration-per-job experiments with
    files in it here (the MLP's CPU rows are not in the energy table), so an edit elsewhere
    does not rerun it."""
    sections = {  # (a distributed job's rows are checked by what they record)
        e.name: config[e.name]
        for e in feeding(table)
        if e.runner == "single" and _feeds(config, e, table)
    }
    return {**sections, "energy": config["energy"], "execution": config["execution"]}


def _feeds(config: dict, experiment: Experiment, table: str) -> bool:
    """Whether ``experiment`` has configurations whose rows join ``table`` (without listing
    them: a sweep may hold tens of thousands)."""
    section = config.get(experiment.name, {})
    if not all(section.get(a.key) for a in experiment.axes):
        return False
    return any(joins(experiment, table, t) for t in section["targets"])
