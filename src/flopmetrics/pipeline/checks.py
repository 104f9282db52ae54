"""Parse-time checks of what the schema cannot express: every config value that names a thing
(target, model, meter, colour map, trace, figure parameter) is resolved before any job runs, and
an error names the key, the value and what would be valid."""

from __future__ import annotations

import difflib
import importlib
import sys

import matplotlib

from ..analysis import grid
from ..contracts import paths
from ..contracts.errors import ConfigError, ModelConfigError, TargetError
from ..contracts.experiments import BY_NAME, EXPERIMENTS
from ..energy import datasheet
from ..flops.models import attention_refusal, precision_refusal, resolve, summary
from ..jobs.targets import resolve_target
from . import sweeps

# registered when seaborn loads
SEABORN_CMAPS = {"rocket", "mako", "flare", "crest", "vlag", "icefire"}


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
    check_experiments(config)
    check_calibration(config)
    check_figures(config)
    check_round_trip(config)


def check_experiments(config: dict) -> None:
    """The parse-time checks an experiment's registry entry names, where it runs."""
    for e in sweeps.experiments_run(config):
        if e.check:
            module, function = e.check.split(":")
            getattr(importlib.import_module(module), function)(config)


def check_calibration(config: dict) -> None:
    """The calibration calibrates registered experiments."""
    for i, name in enumerate(config.get("calibration", {}).get("experiments", [])):
        if name not in BY_NAME:
            fail(
                f"calibration.experiments[{i}]",
                f"{name!r} is no experiment (known: {sorted(BY_NAME)})",
            )


def check_targets(config: dict) -> None:
    """Every target of every experiment resolves; a GPU-only experiment has no CPU target."""
    for e in EXPERIMENTS:
        for i, target in enumerate(config.get(e.name, {}).get("targets", [])):
            if e.gpu_only and target == "cpu":
                fail(
                    f"{e.name}.targets[{i}]",
                    f"'cpu': {e.gpu_only}; name a GPU target",
                )
            try:
                resolve_target(target)
            except TargetError as err:
                fail(f"{e.name}.targets[{i}]", str(err))
        section = config.get(e.name, {})
        if "cpu" in section.get("targets", []) and "tf32" in section.get("precisions", []):
            fail(  # rows labelled tf32 would hold fp32 work
                f"{e.name}.precisions[{section['precisions'].index('tf32')}]",
                "'tf32' is a tensor-core mode of NVIDIA GPUs: on the cpu target it computes in "
                f"fp32; measure fp32 there (or give {e.name}.targets GPU targets only)",
            )


def check_models(config: dict, report) -> None:
    """Each model resolves, transformers builds it (on the meta device), its name is a safe
    file name used once; its size is reported, so a config that fell back to transformers'
    defaults is seen."""
    for e in EXPERIMENTS:
        for axis in e.axes:
            if axis.models:
                _check_models(config, f"{e.name}", axis.key, report)


def _check_models(config: dict, section: str, key: str, report) -> None:
    names = {}
    for i, spec in enumerate(config.get(section, {}).get(key, [])):
        where = f"{section}.{key}[{i}]"
        try:
            name, fields = resolve(spec)
        except ModelConfigError as err:
            fail(where, str(err))
        try:
            size = summary(fields)
        except ModelConfigError as err:
            fail(where, f"model {name!r}: {err}")
        for j, precision in enumerate(config[section].get("precisions", [])):
            why = precision_refusal(size, precision, config[section].get("targets", []))
            if why:
                fail(f"{section}.precisions[{j}]", f"model {name!r}: {why}")
        if name in names:
            fail(
                where,
                f"model name {name!r} is also the name of {section}.{key}[{names[name]}]: two "
                "models would write the same files; name them apart "
                "({name: <name>, config: <path>})",
            )
        names[name] = i
        _check_attention(config, section, where, name, fields)
        if config[section]["targets"]:
            report(
                f"model {name}: {size['model_type']}, {size['layers']} layers, hidden size "
                f"{size['hidden_size']}, {size['parameters']:,} parameters"
            )


def _check_attention(config: dict, section: str, where: str, name: str, fields: dict) -> None:
    """The attention the experiment builds the model with (``sdpa`` where it has no key:
    inference) is one its architecture has: else every job would fail on the GPU."""
    implementation = config[section].get("attn_implementation", "sdpa")
    refusal = attention_refusal(fields, implementation)
    if refusal is not None:
        configurable = "attn_implementation" in config[section]
        fix = f"set {section}.attn_implementation: eager" if configurable else "it cannot be served"
        fail(where, f"model {name!r} has no {implementation!r} attention ({refusal}); {fix}")


def check_co2e(config: dict) -> None:

    for key, message in grid.problems(config.get("co2e", {})):
        fail(key, message)
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
            _, label = resolve_target(w["target"])
        except TargetError as err:
            fail(f"co2e.workloads[{i}].target", str(err))
        if label is None:
            fail(
                f"co2e.workloads[{i}].target",
                f"{w['target']!r} is not a GPU label (e.g. h100, a100, or a variant key "
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


def _targets(config: dict):
    """Every target that measures: ``(section, index, target, why it runs on the CPU or "")``."""
    run_on_cpu = config["execution"]["run_on_cpu"]
    for e in EXPERIMENTS:
        if e.gpu_only:
            continue
        section = e.name
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
    if trace and not trace.endswith(".parquet"):
        fail(
            "figures.power_trace.trace",
            f"{trace!r} is not a trace file: name one job's trace "
            "(results/traces/<experiment>/.../<configuration>.parquet) or a committed one",
        )
    if trace and trace.startswith("results/"):
        made = [
            f
            for e in EXPERIMENTS
            if "trace" in e.outputs()
            for f in sweeps.files(config, e, "trace")
        ]
        if trace not in made:
            fail(
                "figures.power_trace.trace",
                f"{trace!r} is not a trace any job of this config writes "
                f"({len(made)} do, e.g. {made[:3]}); name one of those, a committed "
                "trace under resources/, or null",
            )


def check_round_trip(config: dict) -> None:
    """Every configuration's wildcard values come back unchanged from its files' path, and no
    two configurations share a path (nothing overwritten in silence)."""
    for e in EXPERIMENTS:
        template = e.table()
        pattern, seen = paths.pattern(template), {}
        for w in sweeps.configurations(config, e):
            path = template.format(**w)
            m = pattern.match(path)
            if not m or {k: str(v) for k, v in w.items()} != m.groupdict():
                fail(
                    e.name,
                    f"the configuration {w} would be written to {path!r}, which does not read "
                    "back as the same configuration: a value holds characters its path cannot "
                    "carry",
                )
            if path in seen:
                fail(e.name, f"the configurations {seen[path]} and {w} would both write {path!r}")
            seen[path] = w
