"""Parse-time checks of what the schema cannot express: every config value that names a thing
(target, model, meter, colour map, trace, figure parameter) is resolved before any job runs, and
an error names the key, the value and what would be valid."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import matplotlib
import pyarrow.parquet as pq

from ..contracts import paths
from ..contracts.errors import ConfigError, ModelConfigError, TargetError
from ..contracts.vocabulary import REQUIRED_COLUMNS
from ..energy import datasheet
from ..flops.models import resolve, summary
from ..jobs.targets import resolve_target
from . import sweeps

SEABORN_CMAPS = {
    "rocket",
    "mako",
    "flare",
    "crest",
    "vlag",
    "icefire",
}  # registered when seaborn loads


def fail(key: str, message: str):

    raise ConfigError(f"config error at {key}: {message}")


def check_consistency(config: dict, report=None) -> None:
    """All cross-key checks; ``report(line)`` gets what parse time resolved (model sizes)."""
    report = report or (lambda line: print(line, file=sys.stderr))
    check_targets(config)
    check_models(config, report)
    check_co2e(config)
    check_thesis(config)
    check_meter(config)
    check_launch(config)
    check_distributed(config)
    check_figures(config)
    check_round_trip(config)


def check_targets(config: dict) -> None:

    for section in ("mlp", "llm", "matmul", "distributed", "ncu"):
        for i, target in enumerate(config.get(section, {}).get("targets", [])):
            if section == "ncu" and target == "cpu":
                fail(
                    f"ncu.targets[{i}]",
                    "'cpu': Nsight Compute profiles GPU kernels only; name a GPU target",
                )
            try:
                resolve_target(target)
            except TargetError as err:
                fail(f"{section}.targets[{i}]", str(err))


def check_models(config: dict, report) -> None:
    """Each model resolves, transformers builds it (on the meta device), its name is a safe
    file name used once; its size is reported, so a config that fell back to transformers'
    defaults is seen."""
    for section in ("llm", "distributed"):
        _check_models(config, section, report)


def _check_models(config: dict, section: str, report) -> None:

    names = {}
    for i, spec in enumerate(config.get(section, {}).get("models", [])):
        key = f"{section}.models[{i}]"
        try:
            name, fields = resolve(spec)
            size = summary(fields)
        except ModelConfigError as err:
            fail(key, str(err))
        if name in names:
            fail(
                key,
                f"model name {name!r} is also the name of {section}.models[{names[name]}]: two models would "
                "write the same files; name them apart ({name: <name>, config: <path>})",
            )
        names[name] = i
        if config[section]["targets"]:
            report(
                f"model {name}: {size['model_type']}, {size['layers']} layers, hidden size {size['hidden_size']}, "
                f"{size['parameters']:,} parameters"
            )


def check_co2e(config: dict) -> None:

    names: dict[str, int] = {}
    for i, w in enumerate(config.get("co2e", {}).get("workloads", [])):
        if w["name"] in names:
            fail(
                f"co2e.workloads[{i}].name",
                f"{w['name']!r} also names co2e.workloads[{names[w['name']]}]: "
                "each workload's row is found by its name",
            )
        names[w["name"]] = i
        try:
            summary(resolve(w["model"])[1])
        except ModelConfigError as err:
            fail(f"co2e.workloads[{i}].model", str(err))
        try:
            _, label = resolve_target(w["gpu"])
        except TargetError as err:
            fail(f"co2e.workloads[{i}].gpu", str(err))
        if label is None:
            fail(
                f"co2e.workloads[{i}].gpu",
                f"{w['gpu']!r} is not a GPU label (e.g. h100, a100, or a variant key "
                "such as h100_sxm)",
            )
        if w.get("strategy", "none") == "none" and w.get("world_size", 1) != 1:
            fail(
                f"co2e.workloads[{i}].strategy",
                f"world_size {w['world_size']} needs a strategy (ddp or fsdp) "
                "whose measured node rows calibrate it",
            )


def check_thesis(config: dict) -> None:

    gpu = config["thesis"]["compare_gpu"]
    if gpu not in datasheet.labels():
        fail(
            "thesis.compare_gpu",
            f"{gpu!r} is not a GPU label of the datasheet ({datasheet.labels()})",
        )


def check_meter(config: dict) -> None:
    """A GPU meter cannot measure a CPU job, nor RAPL a GPU job."""
    meter = config["energy"]["meter"]
    for section, i, target, cpu_why in _targets(config):
        if meter in ("nvml", "nvml_trace") and cpu_why:
            fail(
                "energy.meter",
                f"{meter!r} reads a GPU, but {section}.targets[{i}] = {target!r} runs on the "
                f"CPU ({cpu_why}); use 'auto', 'rapl' or 'none'",
            )
        if meter == "rapl" and not cpu_why:
            fail(
                "energy.meter",
                f"'rapl' reads the CPU, but {section}.targets[{i}] = {target!r} is a GPU; "
                "use 'auto', 'nvml' or 'nvml_trace'",
            )


def check_launch(config: dict) -> None:
    """CUDA graphs replay GPU work only."""
    for section, i, target, cpu_why in _targets(config):
        if cpu_why and config[section].get("launch") == "cuda_graph":
            fail(
                f"{section}.launch",
                f"'cuda_graph' replays CUDA graphs, but {section}.targets[{i}] = {target!r} "
                f"runs on the CPU ({cpu_why}); use 'eager'",
            )


def check_distributed(config: dict) -> None:
    """Strong scaling splits each batch evenly over the ranks; Zeus watches GPUs only."""
    ds = config.get("distributed", {})
    if not ds.get("targets"):
        return
    if "strong" in ds["scaling"]:
        for b in ds["batch_size"]:
            for n in ds["world_size"]:
                if b % n:
                    fail(
                        "distributed.batch_size",
                        f"{b} cannot be split evenly over world_size {n} ranks "
                        "(strong scaling: batch_size is the batch of all ranks)",
                    )
    for section, i, target, cpu_why in _targets(config):
        if section == "distributed" and cpu_why and ds["zeus"]:
            fail(
                "distributed.zeus",
                f"Zeus watches GPUs, but distributed.targets[{i}] = {target!r} runs on the "
                f"CPU ({cpu_why}); set it false",
            )


def _targets(config: dict):
    """Every profiling target: ``(section, index, target, why it runs on the CPU or "")``."""
    run_on_cpu = config["execution"]["run_on_cpu"]
    for section in ("mlp", "llm", "matmul", "distributed"):
        for i, target in enumerate(config.get(section, {}).get("targets", [])):
            why = (
                "execution.run_on_cpu is on"
                if run_on_cpu
                else "it is the CPU"
                if target == "cpu"
                else ""
            )
            yield section, i, target, why


def _is_cmap(name: str) -> bool:
    base = name.removesuffix("_r")
    return name in matplotlib.colormaps or base in matplotlib.colormaps or base in SEABORN_CMAPS


def check_figures(config: dict) -> None:
    figs = config.get("figures", {})
    style = figs.get("mlp_flops_vs_d", {})
    for key in ("n", "m"):
        chosen = style.get(key)
        if chosen is not None and chosen not in config["mlp"][key]:
            fail(
                f"figures.mlp_flops_vs_d.{key}",
                f"{chosen} is not in the sweep mlp.{key} = {config['mlp'][key]} "
                "(pick one of those, or null for the largest)",
            )
    for figure in ("mlp_pct_diff_heatmap", "ncu_gap_heatmap"):
        cmap = figs.get(figure, {}).get("cmap")
        if cmap is not None and not _is_cmap(cmap):
            near = difflib.get_close_matches(cmap, [*matplotlib.colormaps, *SEABORN_CMAPS], n=3)
            fail(
                f"figures.{figure}.cmap",
                f"{cmap!r} is not a matplotlib or seaborn colour map"
                + (f" (did you mean {', '.join(near)}?)" if near else ""),
            )
    trace = figs.get("power_trace", {}).get("trace")
    if trace and trace.startswith("results/"):
        made = [
            paths.TRACE[e].format(**w)
            for e in ("llm", "matmul", "mlp")
            for w in sweeps.grid(config, e)
        ]
        if trace not in made:
            fail(
                "figures.power_trace.trace",
                f"{trace!r} is not a trace any job of this config writes "
                f"({len(made)} do, e.g. {made[:3]}); name one of those, a committed "
                "trace under resources/, or null",
            )


def check_figure_lengths(config: dict, reference_lengths: set[int]) -> None:
    """A sequence length a figure is asked to show must have been measured (or be in the sweep)."""
    seq = config["figures"]["energy_efficiency"]["seq_len"]
    known = set(config["llm"]["seq_len"] if config["llm"]["targets"] else []) | set(
        reference_lengths
    )
    if seq is not None and seq not in known:
        fail(
            "figures.energy_efficiency.seq_len",
            f"{seq} was never measured: the sweep and the reference data "
            f"have {sorted(known)} (or null for all)",
        )


def check_round_trip(config: dict) -> None:
    """Every job's wildcard values come back unchanged from its output path, and no two jobs
    share a path (nothing overwritten in silence)."""
    for experiment, template in paths.RAW.items():
        pattern, seen = paths.pattern(template), {}
        for w in sweeps.grid(config, experiment):
            path = template.format(**w)
            m = pattern.match(path)
            if not m or {k: str(v) for k, v in w.items()} != m.groupdict():
                fail(
                    experiment,
                    f"the job {w} would be written to {path!r}, which does not read back as the "
                    "same job: a value holds characters its path cannot carry",
                )
            if path in seen:
                fail(experiment, f"the jobs {seen[path]} and {w} would both write {path!r}")
            seen[path] = w


def reference_files(
    dirs: list[str], locate=lambda d: d, results: str = "results", kind: str = "raw"
) -> list[str]:
    """Per-job parquet files under the configured reference folders (``raw/**/*.parquet``; with
    ``kind="ranks"`` the per-rank tables of distributed jobs, ``ranks/**/*.parquet``, which a
    folder need not have).
    A folder listed twice, folders that hold one another, and the results folder itself are
    refused: their rows would be merged twice (``locate`` finds a configured path)."""

    out, seen = [], {}
    results_dir = Path(results).resolve()
    for i, d in enumerate(dirs):
        key, where = f"reference.dirs[{i}]", Path(locate(d)).resolve()
        if where == results_dir or results_dir in where.parents or where in results_dir.parents:
            fail(
                key,
                f"{d!r} is (or holds, or lies in) this run's results folder: its rows are merged as "
                "measured already; merging them as reference too would count each twice",
            )
        for j, other in seen.items():
            if where == other or other in where.parents or where in other.parents:
                fail(
                    key,
                    f"{d!r} overlaps reference.dirs[{j}] ({dirs[j]!r}): rows would be merged twice",
                )
        seen[i] = where
        found = sorted(str(p) for p in where.glob(f"{kind}/**/*.parquet"))
        if not found and kind == "raw":
            fail(key, f"no raw/**/*.parquet under {d!r} (looked in {where})")
        out += found
    return out


def reference_lengths(files: list[str]) -> set[int]:
    """Sequence lengths present in the reference files (their seq_len column alone is read).
    A file that is no flopmetrics per-job table is refused here, before anything runs."""

    lengths = set()
    for f in files:
        try:
            names = pq.read_schema(f).names
        except Exception as err:  # pyarrow raises several kinds for a file that is not parquet
            fail(
                "reference.dirs", f"{f}: not a readable parquet file ({type(err).__name__}: {err})"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            fail(
                "reference.dirs",
                f"{f}: not a flopmetrics per-job table: columns {missing} are missing",
            )
        if "seq_len" in names:
            lengths |= {
                int(v)
                for v in pq.read_table(f, columns=["seq_len"]).column(0).to_pylist()
                if v == v
            }
    return lengths
