# Validation and helpers shared by all rules. Logic lives in the flopmetrics package.
import json
import math
import shlex
import sys
from pathlib import Path

# the workflow's own package for this process and every job it starts: src/ beside the Snakefile
# (an environment made by --sdm conda holds the dependencies only)
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from flopmetrics.pipeline.code import export_package

export_package(Path(workflow.basedir) / "src")

from flopmetrics.figures import registry as figure_registry
from flopmetrics.pipeline import config as fm_config
from flopmetrics.contracts import paths
from flopmetrics.contracts.vocabulary import SERVING_PASSES
from flopmetrics.contracts.experiments import feeding, may_have_rows
import flopmetrics.jobs.params
from flopmetrics.pipeline import code, references, sweeps
from flopmetrics.pipeline.slurm import (
    check_mapped,
    requested_executor,
    slurm_resources,
)

fm_config.validate(config, fm_config.load_schema())
# `cuda`/`cuda:<i>` name this machine's GPUs: check them here. Architecture labels (h100,
# ...) may be meant for a cluster's nodes, so the job checks those on the node it lands on.
if config["execution"]["check_devices"] and not config["execution"]["run_on_cpu"]:
    cuda = [(k, t) for k, t in fm_config.all_targets(config) if t.startswith("cuda")]
    if cuda or "cuda" in config["distributed"]["targets"]:
        from flopmetrics.pipeline import (
            devices,
        )  # loads torch: only where a GPU is named

        for key, target in cuda:
            devices.check_devices([target], key=key)
        if "cuda" in config["distributed"]["targets"]:
            # one GPU per rank: the largest job needs world_size of this machine's GPUs
            top = max(config["distributed"]["world_size"])
            devices.check_devices([f"cuda:{top - 1}"], key="distributed.world_size")

# a cluster run (dry runs included) must not pass a GPU target Slurm has no mapping for
check_mapped(
    config,
    {t for _, t in fm_config.all_targets(config)},
    requested_executor(sys.argv),
)

FIGURES = figure_registry.enabled(config)


wildcard_constraints:
    **paths.WILDCARDS,
    mlp_pass="forward|backward",


def job_resources(target_wildcard):
    """Resources of a profiling job: `gpu_slot` (local GPU exclusivity, see
    profiles/default) and the Slurm resources from config `slurm` (profiles/slurm).

    Only the Slurm keys this config can use are declared, and they are constants where every
    target gives the same value: a callable resource costs an evaluation per job, which on a
    5,000-job sweep is most of the DAG build."""
    targets = {t for _, t in fm_config.all_targets(config)}
    per_target = {
        t: {
            "gpu_slot": 0 if t == "cpu" else 1,
            **slurm_resources(config, t, strict=False),
        }
        for t in targets
    }
    unmapped = {
        t for t in targets if t != "cpu" and t not in config["slurm"]["targets"]
    }
    keys = {"gpu_slot", "slurm_partition"}
    keys |= (
        {"gres"} if config["slurm"]["gpu_request"] == "gres" else {"gpu", "gpu_model"}
    )
    keys |= {
        k
        for k in ("constraint", "slurm_account")
        if any(r[k] for r in per_target.values())
    }
    out = {}
    for key in sorted(keys):
        values = {r[key] for r in per_target.values()}
        if unmapped and key == "slurm_partition":
            # decided when jobs are built, once the executor is known: a cluster run
            # must fail on a target without a mapping, a local run needs none
            out[key] = lambda wc: slurm_resources(
                config, wc[target_wildcard], strict=not workflow.local_exec
            )["slurm_partition"]
        elif len(values) <= 1:
            out[key] = values.pop() if values else ("" if key != "gpu_slot" else 0)
        else:
            out[key] = (lambda k: lambda wc: per_target[wc[target_wildcard]][k])(key)
    return out


def distributed_resources():
    """A distributed job's resources: those of a profiling job, with all of its ranks' GPUs
    asked for on one node (gres gpu:<type>:<world size>, or gpus) and 4 CPUs per rank, and the
    job's timeouts (config distributed.timeout_s, collective_timeout_s; whole seconds).
    """
    res = job_resources("target")
    key = "gres" if config["slurm"]["gpu_request"] == "gres" else "gpu"
    res[key] = lambda wc: slurm_resources(
        config, wc.target, strict=not workflow.local_exec, gpus=int(wc.world_size)
    )[key]
    res["cpus_per_task"] = lambda wc: 4 * int(wc.world_size)
    # timeouts change no measurement: as resources, an edit reruns nothing (params would)
    for timeout in flopmetrics.jobs.params.TIMEOUTS:
        res[timeout] = math.ceil(config["distributed"][timeout])
    return res


# the interpreter of a profiling job's client: the conda environment's where rules run in one
# (--sdm conda), else Snakemake's own (whatever is first on PATH may lack flopmetrics)
PYTHON = (
    "python"
    if "conda" in str(getattr(workflow.deployment_settings, "deployment_method", ""))
    else shlex.quote(sys.executable)
)


def measuring_priority(experiment):
    """Measuring jobs first: they hold the workers, and everything after them waits; those whose
    rows feed the calibration before the others, as the longest chain follows them (merge,
    calibrate, CO2e, their figures)."""
    return 2 if experiment.name in config["calibration"]["experiments"] else 1


def profile_params(experiment):
    """The `params:` of a profiling job: one configuration (flopmetrics.jobs.spec), as JSON
    for a measuring worker's client; an Nsight Compute job's: what it captures."""
    if experiment.runner == "ncu":
        return flopmetrics.jobs.params.ncu_params(config, {})
    if experiment.runner == "ranks":
        return lambda wc: flopmetrics.jobs.params.job_params(config, experiment, wc)
    # in the parameters' own order: a workload's keys name its configuration in that order
    return lambda wc: json.dumps(
        flopmetrics.jobs.params.job_params(config, experiment, wc)
    )


def library(*modules, alone=()):
    """The package files a cheap rule's work runs (modules and what they import): inputs, so a
    library edit makes that rule stale. Profiling jobs do not list them (see flopmetrics.pipeline.code).
    """
    return code.sources(*modules, alone=alone)


def repo_path(path):
    """A configured path as given if it exists (relative to the working directory), else
    relative to the workflow's own directory (so `-d elsewhere` still finds shipped data).
    """
    if path is None or Path(path).exists() or Path(path).is_absolute():
        return path
    shipped = Path(workflow.basedir) / path
    return str(shipped) if shipped.exists() else path


def reference_files(kind="raw", table=None):
    """Committed reference measurements (per-job parquet) under config reference.dirs (with
    table, those of the experiments whose rows join it); with kind="ranks" the per-rank tables
    of their distributed jobs."""
    experiments = None if table is None else tuple(e.name for e in feeding(table))
    return references.reference_files(
        config["reference"]["dirs"], repo_path, kind=kind, experiments=experiments
    )


def card_spread_files():
    """Per-job rows of configurations measured on several cards (calibration.card_spread_dirs)."""
    return references.reference_files(
        config["calibration"]["card_spread_dirs"],
        repo_path,
        key="calibration.card_spread_dirs",
    )


references.check_figure_lengths(config, references.reference_lengths(reference_files()))


def figure_inputs(figure):
    """A figure's inputs; files the workflow does not make are found like repo_path."""
    out = {}
    for name, path in figure.inputs(config).items():
        if isinstance(path, str) and not path.startswith("results/"):
            if not Path(repo_path(path)).exists():
                raise fm_config.ConfigError(
                    f"config error at figures.{figure.name}: input {name} {path!r} does not exist"
                )
            path = repo_path(path)
        out[name] = path
    return out


def thesis_enabled():
    return config["thesis"]["architecture_dir"] is not None


def all_targets():
    targets = [
        paths.MERGED_MLP,
        paths.MERGED_ENERGY,
        *([paths.MERGED_INFERENCE] if may_have_rows(config, "inference") else []),
        paths.COVERAGE_TABLE,
        *(
            [paths.MERGED_CLASSES, paths.CLASS_ENERGY, paths.CLASS_ENERGY_VALIDATION]
            if may_have_rows(config, "classes")
            else []
        ),
        *(
            [paths.MERGED_RANKS]
            if sweeps.table_files(config, "ranks") or reference_files("ranks")
            else []
        ),
        paths.CALIBRATION,
        paths.CALIBRATION_TABLE,
        paths.CO2E,
        paths.CO2E_TABLE,
        paths.SCALING_TABLE,
    ]
    if config["ncu"]["targets"] or config["ncu"]["dirs"]:
        targets += [paths.MERGED_NCU, paths.NCU_GAP]
    if config["ncu"]["class_dirs"]:
        targets += [paths.NCU_CLASSES, paths.NCU_CLASSES_TABLE]
    targets += [out for fig in FIGURES for out in fig.outputs()]
    if thesis_enabled():
        targets += [
            paths.MERGED_THESIS,
            paths.THESIS_READINGS,
            paths.THESIS_AUDIT,
            paths.THESIS_AUDIT_TABLE,
            paths.THESIS_AUDIT_REPORT,
            paths.THESIS_AUDIT_CSV,
        ]
    return targets


def steptime_rows(wildcards):
    """The causal-LM rows of the folders the step-time model is fitted on (found and checked as
    reference folders are)."""
    dirs = config["calibration"]["steptime_dirs"]
    if not dirs:
        raise ValueError(
            "calibration.steptime_dirs is empty: name the folders of causal-LM rows to fit the "
            "step-time model on (the packaged fit serves otherwise)"
        )
    # and the matmul experiment's rows (the rate of a GEMM on fp32 operands) and the memory
    # experiment's (the speeds of the memory-bound kernels)
    return steptime_files("steptime_dirs", ("llm", "matmul", "memory", "attention"))


def steptime_dirs(key="steptime_dirs"):
    """calibration.steptime_dirs (or another key's folders), each found as every configured
    folder is (repo_path)."""
    return [repo_path(d) for d in config["calibration"][key]]


def steptime_heldout_rows(wildcards):
    """The causal-LM rows of other models the step-time model is judged on (none by default)."""
    return steptime_files("steptime_heldout_dirs")


def steptime_files(key, experiments=("llm",)):
    """The rows of ``experiments`` (the causal LMs') below the folders of calibration.<key>,
    found and checked as reference folders are."""
    dirs = config["calibration"][key]
    return references.reference_files(
        dirs, repo_path, key=f"calibration.{key}", experiments=experiments
    )


def steptime_calibration(wildcards):
    """The pipeline's step-time model where calibration.steptime_dirs names folders (else the
    CO2e job reads the packaged one)."""
    if not config["calibration"]["steptime_dirs"]:
        return {}
    return {"steptime": paths.STEPTIME_CALIBRATION}


def serving_calibration(wildcards):
    """The serving model's table and the measured serving rows, where the CO2e table declares a
    serving workload."""
    serving = any(w.get("pass") in SERVING_PASSES for w in config["co2e"]["workloads"])
    if not serving:
        return {}
    return {"serving": paths.SERVING_CALIBRATION, "inference": paths.MERGED_INFERENCE}
