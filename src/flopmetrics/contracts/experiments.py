"""The experiment registry: every experiment of the pipeline is one entry here.

An experiment is a config section whose lists (its axes) span configurations, each measured by
one profiling job into files named by its wildcards. Its entry gives the section, the axes (in
the order of the files' folders and the jobs' order), the path of a configuration below its
kind of output, the workload builder (named ``"module:function"``: it is imported where a job
runs, so reading the registry loads no torch), what else from the section builds the workload,
how a configuration is run (``runner``) and which merged tables its rows join.

Adding an experiment: a workload module with its ``build`` function, one :class:`Experiment`
entry in :data:`EXPERIMENTS`, and its config block in ``data/config.schema.yaml``; its rule,
files, parameters, parse-time checks and merge follow from the entry (README, "Adding an
experiment").
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .vocabulary import DIRECT_PASSES, PRECISIONS, SCALINGS, SERVING_PASSES, STRATEGIES

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # a model's name: a safe file name


@dataclass(frozen=True)
class Axis:
    """One swept quantity: the wildcard, column and workload key ``name``, taking its values
    from the section's list ``key``. A ``models`` axis lists model specs (preset, path or
    inline mapping); its wildcard is each model's name."""

    name: str
    key: str
    pattern: str = r"\d+"
    models: bool = False


TARGET = Axis("target", "targets", r"[a-z0-9_:]+")
PRECISION = Axis("precision", "precisions", "|".join(PRECISIONS))
MODEL = Axis("model", "models", NAME, models=True)


def size(name: str, key: str | None = None) -> Axis:
    """An integer axis (``n``, ``batch_size``, ...) read from the list ``key`` (default:
    ``name``)."""
    return Axis(name, key or name)


# a configuration's files by runner: output name -> template ({stem}: the entry's path)
OUTPUTS = {
    "single": {
        "table": "results/raw/{experiment}/{stem}.parquet",
        "trace": "results/traces/{experiment}/{stem}.parquet",
    },
    "ranks": {  # the node's rows; every rank's rows, windows and raw power trace
        "table": "results/raw/{experiment}/{stem}.parquet",
        "ranks": "results/ranks/{experiment}/{stem}.parquet",
        "windows": "results/windows/{experiment}/{stem}.parquet",
        "traces": "results/traces/{experiment}/{stem}.parquet",
    },
    "ncu": {  # Nsight Compute's raw CSV and the capture's manifest
        "table": "results/ncu/{stem}.csv.gz",
        "manifest": "results/ncu/{stem}.json",
    },
}
LOGS = {
    "single": "logs/{experiment}/{stem}.log",
    "ranks": "logs/{experiment}/{stem}.log",
    "ncu": "logs/ncu/{stem}.log",
}


@dataclass(frozen=True)
class Experiment:
    """One experiment (see the module docstring)."""

    name: str  # config section; results/raw/<name>/...; column ``experiment``
    axes: tuple[Axis, ...]  # target first; their product is the configurations, in job order
    stem: str  # a configuration's path below its kind of output, e.g. "{target}/{precision}/n{n}"
    builder: str | None  # "module:function" building one configuration's workload
    build_keys: tuple[str, ...] = ()  # section keys the workload is built from beside its axes
    passes: tuple[str, ...] = DIRECT_PASSES  # what it measures (a ``passes`` build key: a subset)
    runner: str = "single"  # single (profile.py), ranks (torchrun), ncu (Nsight Compute)
    tables: tuple[str, ...] = ("energy",)  # merged tables its rows join: energy, mlp, ranks, ncu
    cpu_energy: bool = True  # whether its CPU rows join the energy table too
    job_axes: tuple[str, ...] = ()  # axes the runner takes apart from the workload (ranks)
    renamed_stems: tuple[str, ...] = ()  # older names of its files, read through the rename
    gpu_only: str = ""  # why it has no CPU target (empty: it may run on the CPU)
    check: str | None = None  # "module:function" checking its section at parse time

    @property
    def identity(self) -> tuple[str, ...]:
        """The columns that name a configuration (its rows hold them; its path reads them)."""
        return tuple(a.name for a in self.axes)

    @property
    def workload_axes(self) -> tuple[str, ...]:
        """The axes the workload is built from (not where it runs nor in what precision)."""
        return tuple(a for a in self.identity if a not in ("target", "precision", *self.job_axes))

    def outputs(self) -> dict[str, str]:
        """Output name -> path template (every axis a wildcard)."""
        made = OUTPUTS[self.runner].items()
        return {k: v.format(experiment=self.name, stem=self.stem) for k, v in made}

    def log(self) -> str:
        return LOGS[self.runner].format(experiment=self.name, stem=self.stem)

    def table(self) -> str:
        """The per-configuration file its rows are merged from."""
        return self.outputs()["table"]


MLP = Experiment(
    "mlp",
    (TARGET, PRECISION, size("n"), size("d"), size("m")),
    "{target}/{precision}/n{n}_d{d}_m{m}",
    "flopmetrics.workloads.mlp:build",
    # the train step adds only AdamW to forward_backward, which the causal LM measures
    passes=("forward", "forward_train", "forward_backward"),
    tables=("mlp", "energy"),
    cpu_energy=False,
)
LLM = Experiment(
    "llm",
    (TARGET, MODEL, PRECISION, size("batch_size"), size("seq_len")),
    "{target}/{model}/{precision}/b{batch_size}_s{seq_len}",
    "flopmetrics.workloads.causal_lm:build",
    build_keys=("passes", "attn_implementation", "attention_flops"),
)
INFERENCE = Experiment(
    "inference",
    (TARGET, MODEL, PRECISION, size("batch_size"), size("prompt_len"), size("output_len")),
    "{target}/{model}/{precision}/b{batch_size}_p{prompt_len}_o{output_len}",
    "flopmetrics.workloads.inference:build",
    build_keys=("passes",),
    passes=SERVING_PASSES,
    tables=("inference",),
)
MATMUL = Experiment(
    "matmul",
    (TARGET, PRECISION, size("size", "sizes")),
    "{target}/{precision}/size{size}",
    "flopmetrics.workloads.matmul:build",
    passes=("forward",),
    renamed_stems=("{target}/{precision}/n{size}",),
)
MEMORY = Experiment(
    "memory",
    (TARGET, PRECISION, Axis("pattern", "patterns", "vectorized|strided|cat"), size("mib")),
    "{target}/{precision}/{pattern}_mib{mib}",
    "flopmetrics.workloads.memory:build",
    passes=("forward",),
)
ATTENTION = Experiment(
    "attention",
    (
        TARGET,
        PRECISION,
        size("head_dim", "head_dims"),
        size("heads"),
        size("groups"),
        size("batch_size"),
        size("seq_len"),
    ),
    "{target}/{precision}/d{head_dim}_h{heads}_g{groups}/b{batch_size}_s{seq_len}",
    "flopmetrics.workloads.attention:build",
    passes=("forward", "forward_train", "forward_backward"),
    check="flopmetrics.contracts.experiments:attention_groups",
)
DISTRIBUTED = Experiment(
    "distributed",
    (
        TARGET,
        MODEL,
        PRECISION,
        Axis("strategy", "strategy", "|".join(STRATEGIES)),
        Axis("scaling", "scaling", "|".join(SCALINGS)),
        size("world_size"),
        size("batch_size"),
        size("seq_len"),
    ),
    "{target}/{model}/{precision}/{strategy}_{scaling}_w{world_size}/b{batch_size}_s{seq_len}",
    "flopmetrics.workloads.causal_lm:build",
    build_keys=("passes", "attn_implementation", "attention_flops"),
    runner="ranks",
    tables=("energy", "ranks"),
    job_axes=("strategy", "scaling", "world_size"),
    check="flopmetrics.distributed.checks:check",
)
CLASSES = Experiment(
    "classes",
    (TARGET, MODEL, PRECISION, size("batch_size"), size("seq_len")),
    "{target}/{model}/{precision}/b{batch_size}_s{seq_len}",
    "flopmetrics.workloads.classes:build",
    build_keys=("attn_implementation", "attention_flops"),
    # and every subset of the step's operation classes (known once the step is recorded)
    passes=("train_step", "tape"),
    tables=("classes",),
)
NCU = Experiment(
    "ncu",
    (TARGET, PRECISION),
    "{target}/{precision}",
    None,  # the capture (flopmetrics.ncu.capture) builds the configured MLPs, GEMMs and LMs
    build_keys=("mlp", "gemm", "llm"),
    passes=("forward", "backward"),
    runner="ncu",
    tables=("ncu",),
    gpu_only="Nsight Compute profiles GPU kernels only",
)


def attention_groups(config: dict) -> None:
    """Parse-time check of the attention experiment: every ``heads`` splits into every
    ``groups`` (query heads per key/value head)."""
    section = config["attention"]
    for i, heads in enumerate(section["heads"]):
        for j, groups in enumerate(section["groups"]):
            if heads % groups:
                raise ConfigError(
                    f"config error at attention.groups[{j}]: {heads} query heads "
                    f"(attention.heads[{i}]) do not split into groups of {groups} "
                    "per key/value head"
                )


EXPERIMENTS = (MLP, LLM, INFERENCE, MATMUL, MEMORY, ATTENTION, DISTRIBUTED, CLASSES, NCU)
BY_NAME = {e.name: e for e in EXPERIMENTS}


def feeding(table: str) -> list[Experiment]:
    """The experiments whose rows join merged table ``table``."""
    return [e for e in EXPERIMENTS if table in e.tables]


def may_have_rows(config: dict, table: str) -> bool:
    """Whether a run of ``config`` can have rows for merged table ``table``: an experiment that
    feeds it runs, or reference folders are merged (they may hold its rows)."""
    running = any(config.get(e.name, {}).get("targets") for e in feeding(table))
    return running or bool(config["reference"]["dirs"])


def wildcards() -> dict[str, str]:
    """Every axis's wildcard pattern (the rules constrain their wildcards with them)."""
    out: dict[str, str] = {}
    for e in EXPERIMENTS:
        for a in e.axes:
            if out.setdefault(a.name, a.pattern) != a.pattern:
                raise ValueError(
                    f"axis {a.name!r} has two patterns: {out[a.name]!r}, {a.pattern!r}"
                )
    return out
