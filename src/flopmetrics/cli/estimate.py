"""``flopmetrics estimate``: FLOPs, energy, kWh and CO2e of a training or inference run.

FLOPs come from the model's configuration (counted on the meta device, per pass); energy from
the measured rows of that exact configuration where there are some, else from the prediction
model of the calibration the pipeline fitted (``results/calibration/calibration.parquet``,
``results/merged/energy.parquet`` by default; where this folder has no pipeline results, the
calibration packaged with flopmetrics, fitted on its committed H100 and H200 references): the
same function the pipeline's CO2e table uses. The interval printed says what it is; each
includes the card-to-card spread (a measured step waiting on the host: the job-to-job change
of such steps, where wider), and outside what was calibrated the estimate is marked
extrapolated and widened, or refused. A model the calibration cannot answer for is estimated
by the step-time model of the GPU and precision where there is one
(``results/calibration/steptime.parquet``, else the packaged one): its basis and interval say
so. Where no measured calibration exists for the GPU,
precision and pass, it says so and gives the datasheet bound (peak FLOPs per Joule at TDP):
a lower bound on energy.

Exit status: 0 an estimate from measurements; 3 only the datasheet bound; 2 a bad invocation.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from ..analysis import grid
from ..analysis.co2e import estimate, gpu_label
from ..contracts import packaged, paths
from ..contracts.schema import defaults
from ..contracts.vocabulary import PRECISIONS, SERVING_PASSES
from ..energy import datasheet
from .options import from_schema

CALIBRATION = paths.CALIBRATION  # the pipeline's outputs: one place names them
MEASURED = paths.MERGED_ENERGY
SERVING = paths.SERVING_CALIBRATION
BOUND_ONLY = 3  # exit status: no measured energy for it, only the datasheet's lower bound


class Renamed(argparse.Action):
    """An option that was renamed: using it names the new one (instead of "required")."""

    def __init__(self, option_strings, dest, to: str, **kwargs):
        self.to = to
        super().__init__(option_strings, dest, nargs="?", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"option {option_string} was renamed to {self.to}")


def add(sub) -> None:
    p = sub.add_parser(
        "estimate", help="FLOPs, energy and CO2e of a run", description=__doc__.split("\n\n")[1]
    )
    p.add_argument(
        "--model", required=True, help="a preset (e.g. llama-3.2-1b) or a Hugging Face config.json"
    )
    p.add_argument(
        "--tokens",
        required=True,
        type=from_schema("co2e.workloads[].tokens"),
        help="tokens processed, e.g. 1e9",
    )
    p.add_argument(
        "--target",
        required=True,
        help="the GPU: a datasheet label or variant key, e.g. h100, h100_sxm",
    )
    p.add_argument("--gpu", action=Renamed, to="--target", help=argparse.SUPPRESS)
    p.add_argument("--precision", required=True, choices=PRECISIONS)
    p.add_argument(
        "--pass",
        dest="pass_",
        default="train_step",
        choices=["forward", "backward", "optimizer", "train_step", *SERVING_PASSES],
        help="a training pass, or a serving one (prefill: --tokens are the prompts'; decode: "
        "the generated ones)",
    )
    p.add_argument(
        "--launch",
        choices=["eager", "cuda_graph"],
        help="how the steps are launched (default: as calibrated, eager where both were)",
    )
    p.add_argument("--batch-size", type=from_schema("co2e.workloads[].batch_size"), default=8)
    p.add_argument(
        "--seq-len",
        type=from_schema("co2e.workloads[].seq_len"),
        help="a training pass's tokens per sequence (default 1024)",
    )
    p.add_argument(
        "--prompt-len",
        type=from_schema("co2e.workloads[].prompt_len"),
        help="a serving pass's prompt tokens per sequence (default: the inference experiment's)",
    )
    p.add_argument(
        "--output-len",
        type=from_schema("co2e.workloads[].output_len"),
        help="a serving pass's generated tokens per sequence; decode is estimated at the middle "
        "of them (default: the inference experiment's)",
    )
    p.add_argument(
        "--pue", type=from_schema("co2e.pue"), help="default: the config schema's co2e.pue"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--grid",
        help="the grid's country or region code, e.g. DE, FR, US-CAL-CISO (default: co2e.grid, "
        "WORLD; the bundled table: Electricity Maps 2025)",
    )
    where.add_argument(
        "--grid-intensity",
        type=from_schema("co2e.grid_intensity_g_per_kwh"),
        help="g CO2e per kWh of one's own, instead of a code's",
    )
    p.add_argument(
        "--calibration",
        help=f"calibration table (default: {CALIBRATION} where it exists, else the packaged one)",
    )
    p.add_argument(
        "--measured",
        help="measured rows: an exact configuration's are used as measured (default: "
        f"{MEASURED}; for prefill and decode {paths.MERGED_INFERENCE})",
    )
    p.add_argument("--json", action="store_true", help="the result row as JSON")
    p.set_defaults(run=run)


def chosen_grid(args, co2e: dict) -> grid.Grid:
    """The grid intensity asked for: a number given, a code given, else the config default."""
    if args.grid_intensity is not None:
        return grid.Grid("", args.grid_intensity, "given on the command line (--grid-intensity)")
    return grid.lookup(args.grid) if args.grid else grid.resolve(co2e)


def calibration_source(given: str | None) -> tuple[Path, str]:
    """The calibration table to use and a line saying which it is: the one given (which must
    exist), else this folder's pipeline result, else the packaged one."""
    if given is not None:
        if not Path(given).exists():
            raise FileNotFoundError(f"--calibration {given}: no such file")
        return Path(given), given
    if Path(CALIBRATION).exists():
        return Path(CALIBRATION), CALIBRATION
    info = packaged.provenance()
    return packaged.table_path(), (
        f"packaged with flopmetrics (fitted from {', '.join(info['fitted_from'][:2])}, ...; "
        f"code {info['git_revision'][:7]}, {info['written_utc'][:10]})"
    )


def sizes(args) -> dict:
    """A training pass's sequence length, or a serving pass's prompt and output lengths (the
    other kind's options refused: they would be ignored)."""
    serving = args.pass_ in SERVING_PASSES
    other = (
        {"seq_len": "--seq-len"}
        if serving
        else {"prompt_len": "--prompt-len", "output_len": "--output-len"}
    )
    given = [option for key, option in other.items() if getattr(args, key) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} not with --pass {args.pass_}")
    if not serving:
        return {"seq_len": 1024 if args.seq_len is None else args.seq_len}
    experiment = defaults("inference")
    return {
        "prompt_len": args.prompt_len or experiment["prompt_len"][0],
        "output_len": args.output_len or experiment["output_len"][0],
    }


def serving_source(pass_name: str) -> tuple[pd.DataFrame | None, str]:
    """The serving model's table for a serving pass: this folder's pipeline result where it
    exists, else the packaged one; (None, "") for a training pass."""
    if pass_name not in SERVING_PASSES:
        return None, ""
    if Path(SERVING).exists():
        return pd.read_parquet(SERVING), SERVING
    info = packaged.provenance()
    return pd.read_parquet(packaged.serving_path()), (
        f"packaged with flopmetrics (the serving model fitted from "
        f"{', '.join(info.get('serving_fitted_from', []))}; code "
        f"{info.get('serving_git_revision', '')[:7]})"
    )


def steptime_source(pass_name: str) -> tuple[pd.DataFrame | None, str]:
    """The step-time model's table for a training pass (another model than the calibration's)
    and a line saying which it is: this folder's pipeline result where it exists, else the
    packaged one; (None, "") for a serving pass."""
    if pass_name in SERVING_PASSES:
        return None, ""
    if Path(paths.STEPTIME_CALIBRATION).exists():
        return pd.read_parquet(paths.STEPTIME_CALIBRATION), paths.STEPTIME_CALIBRATION
    info = packaged.provenance()
    return pd.read_parquet(packaged.steptime_path()), (
        f"packaged with flopmetrics (the step-time model fitted from "
        f"{', '.join(info.get('steptime_fitted_from', []))}; code "
        f"{info.get('steptime_git_revision', '')[:7]})"
    )


def run(args) -> int:
    datasheet.most_lenient(
        gpu_label(args.target), args.precision
    )  # an unknown GPU fails here, naming the known ones

    co2e = defaults("co2e")
    pue = co2e["pue"] if args.pue is None else args.pue
    g = chosen_grid(args, co2e)
    path, source = calibration_source(args.calibration)
    calibration = pd.read_parquet(path)
    workload = {
        "name": "cli",
        "model": args.model,
        "tokens": args.tokens,
        "batch_size": args.batch_size,
        "target": args.target,
        "precision": args.precision,
        "pass": args.pass_,
        "launch": args.launch,
        **sizes(args),
    }
    given = args.measured or (paths.MERGED_INFERENCE if args.pass_ in SERVING_PASSES else MEASURED)
    if args.measured and not Path(args.measured).exists():
        raise FileNotFoundError(f"--measured {args.measured}: no such file")
    measured = pd.read_parquet(given) if Path(given).exists() else None
    serving, serving_from = serving_source(args.pass_)
    if serving is not None:
        source = serving_from
    steptime, steptime_from = steptime_source(args.pass_)
    r = (
        estimate(
            [workload],
            calibration,
            pue,
            g.g_per_kwh,
            measured,
            g.source,
            serving,
            steptime,
        )
        .iloc[0]
        .to_dict()
    )
    r["calibration"] = steptime_from if "step-time model" in r["basis"] else source
    if args.json:
        print(
            json.dumps(
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()},
                default=str,
            )
        )
        return 0 if r["status"] == "ok" else BOUND_ONLY
    shape = (
        f"prompt {r['prompt_len']:g}, output {r['output_len']:g}"
        if args.pass_ in SERVING_PASSES
        else f"{r['seq_len']:g} tokens each"
    )
    print(
        f"{args.model}, {args.tokens:.3g} tokens ({r['steps']:.4g} steps of batch "
        f"{args.batch_size}, {shape}), {args.pass_}, {args.target} {args.precision}"
    )
    print(
        f"  FLOPs       {r['flops']:.4g}  (FlopCounterMode on the meta device, from the model's "
        "configuration)"
    )
    if r["status"] == "ok":
        print(f"  energy      {r['energy_j']:.4g} J  ({r['basis']})")
        print(f"  interval    {r['energy_j_lo']:.4g}-{r['energy_j_hi']:.4g} J: {r['interval']}")
        print(f"  kWh         {r['kwh']:.4g} ({r['kwh_lo']:.4g}-{r['kwh_hi']:.4g})")
        print(
            f"  per token   {r['j_per_token']:.4g} J ({r['j_per_token_lo']:.4g}-"
            f"{r['j_per_token_hi']:.4g}); {r['kwh_per_million_tokens']:.4g} kWh per million "
            f"tokens ({r['kwh_per_million_tokens_lo']:.4g}-{r['kwh_per_million_tokens_hi']:.4g})"
        )
        print(
            f"  kg CO2e     {r['kg_co2e']:.4g} ({r['kg_co2e_lo']:.4g}-{r['kg_co2e_hi']:.4g})  "
            f"(PUE {pue:g}, {g.g_per_kwh:g} g/kWh)"
        )
    else:
        print(f"  energy      {r['status']}")
    print(
        f"  at least    {r['energy_j_datasheet_bound']:.4g} J = {r['kwh_datasheet_bound']:.4g} "
        "kWh = "
        f"{r['kg_co2e_datasheet_bound']:.4g} kg CO2e  (datasheet peak/TDP of "
        f"{r['datasheet_variant']}, the most efficient {args.target} variant in "
        f"{args.precision}: a lower bound on every variant)"
    )
    print(f"  grid        {g.g_per_kwh:g} g CO2e/kWh: {g.source}")
    print(f"  scope       {r['scope']}")
    print(f"  calibration {source}")
    return 0 if r["status"] == "ok" else BOUND_ONLY
