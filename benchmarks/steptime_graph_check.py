"""Probe: does the step-time model's GPU term price a step replayed from a CUDA graph?

    python benchmarks/steptime_graph_check.py [--precision bf16] [--label h200]
    python benchmarks/steptime_graph_check.py --config config/heldout22_h200.yaml \
        --name pythia-70m --sizes 2x288 6x288 2x1152 6x1152 > predictions.txt
    python benchmarks/steptime_graph_check.py --config config/heldout23_h200.yaml \
        --gap replayed --out predictions.csv

A replayed step has no host cost, so the packaged model with its host costs set to zero should
predict it, if the GPU's own time is priced right. Without ``--config``: every committed
reference row of the GPU label and precision with ``launch == cuda_graph`` (forward or train
step), predicted from the packaged table with and without its host costs, beside the eager rows
of the same configuration. With it: the same two predictions, as CSV, for a model of that
config's ``llm.models`` at each batch x length, to commit before its replayed steps are measured.
With ``--out``: every step of the config's sweep, predicted as ``steptime.predict`` predicts
(its interval that of the packaged fit's misses of steps bound like it), in the columns of
``benchmarks/preregister.py``, for ``benchmarks/judge_preregistered.py``. ``--gap replayed``
prices a replayed kernel's gap at the smallest the committed replayed rows of the GPU and
precision leave to it, not at the table's eager ``tau``.
Records each step's operations with the installed transformers.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pandas as pd
import transformers
import yaml

from flopmetrics.analysis import steptime, steptime_estimate
from flopmetrics.analysis.step_energy import model_name
from flopmetrics.contracts import packaged
from flopmetrics.flops.models import resolve
from flopmetrics.flops.opstream import step_ops

KEYS = ["model", "batch_size", "seq_len", "pass"]
PASSES = ("forward", "train_step")


def rows(label: str, precision: str, passes=PASSES) -> pd.DataFrame:
    paths = Path("resources/reference").glob(f"**/raw/llm/{label}/**/*.parquet")
    t = pd.concat(pd.read_parquet(p) for p in paths)
    keep = (t["precision"] == precision) & (t["status"] == "ok")
    return t[keep & t["pass"].isin(passes)]


def replayed_params(c: dict, gap: float | None = None) -> dict:
    """The table row ``c`` as ``steptime.predict`` reads it, with its host costs set to zero
    (a replayed step) and, where given, ``gap`` seconds per kernel in place of its ``tau``."""
    zeroed = steptime_estimate.replayed(c)  # as flopmetrics estimate --launch cuda_graph
    return zeroed if gap is None else zeroed | {"tau_s": gap}


def priced(c: dict, gap: float | None = None):
    """Each step's (energy J, time s, bound) by the table row ``c`` as packaged (eager) and with
    its host costs set to zero (replayed)."""
    replayed = replayed_params(c, gap)

    def price(ops: dict, graph: bool) -> tuple[float, float, str]:
        return steptime.step(replayed if graph else c, ops, c["idle_w"], c["limit_w"])

    return price


def replayed_gap(c: dict, label: str, precision: str) -> tuple[float, int]:
    """The gap per kernel the committed replayed rows leave once their kernels' own times are
    priced: the smallest over their configurations (each bounds it from above, as the power
    limit can only stretch a step), and how many there were."""
    t = rows(label, precision, steptime.PASSES)
    t = t[t["launch"] == "cuda_graph"]
    gaps = []
    for (model, batch, seq, pass_name), g in t.groupby(KEYS):
        ops = step_ops(resolve(model)[1], int(batch), int(seq), precision, pass_name)
        # kernel_times leaves out tau and host costs
        seconds = g["time_per_iter_s"].median() - steptime.kernel_times(c, ops).sum()
        gaps.append(seconds / len(ops["cls"]))
    if not gaps:
        raise SystemExit(f"no replayed {precision} rows of {label}")
    return float(min(max(min(gaps), 0.0), c["tau_s"])), len(gaps)


def check(c: dict, label: str, precision: str, gap: float | None) -> None:
    price = priced(c, gap)
    t = rows(label, precision)
    print(f"tau {1e6 * c['tau_s']:.2f} us per kernel (fitted on eager rows)")
    for key, graph in t[t["launch"] == "cuda_graph"].groupby(KEYS):
        model, batch, seq, pass_name = key
        ops = step_ops(resolve(model)[1], int(batch), int(seq), precision, pass_name)
        eager = t[(t[KEYS] == pd.Series(dict(zip(KEYS, key, strict=True)))).all(axis=1)]
        eager = eager[eager["launch"] == "eager"]
        for launch, measured in (("cuda_graph", graph), ("eager", eager)):
            if measured.empty:
                continue
            e, s, bound = price(ops, launch == "cuda_graph")
            joules = measured["energy_j_per_iter"].median()
            print(
                f"{model} {batch} x {seq} {pass_name} {launch}: {len(measured)} rows, "
                f"{joules:.3f} J in {1e3 * measured['time_per_iter_s'].median():.2f} ms; "
                f"predicted {e:.3f} J ({100 * (e / joules - 1):+.1f} %) in {1e3 * s:.2f} ms, "
                f"bound by {bound}; {len(ops['cls'])} kernels"
            )


def preregister(c: dict, config: Path, name: str, sizes: list[str], precision: str) -> None:
    models = yaml.safe_load(config.read_text())["llm"]["models"]
    model = next(m for m in models if isinstance(m, dict) and m.get("name") == name)
    price = priced(c)
    print(
        f"# {name} ({config}) {precision} on an {c['gpu_label'].upper()}, replayed from a CUDA "
        "graph: the packaged step-time table with its host costs set to 0, written before any "
        f"replayed step of it was measured (transformers {transformers.__version__}); eager: the "
        "table as packaged"
    )
    print(
        "batch,seq_len,pass,kernels,graph_energy_j,graph_time_ms,graph_bound,eager_energy_j,"
        "eager_time_ms,eager_bound"
    )
    for size in sizes:
        batch, seq = map(int, size.split("x"))
        for pass_name in PASSES:
            ops = step_ops(resolve(model)[1], batch, seq, precision, pass_name)
            cells = [batch, seq, pass_name, len(ops["cls"])]
            for graph in (True, False):
                e, s, bound = price(ops, graph)
                cells += [f"{e:.4f}", f"{1e3 * s:.3f}", bound]
            print(",".join(map(str, cells)))


def preregister_csv(c: dict, config: Path, precision: str, gap: float | None, out: Path) -> None:
    """Every step of ``config``'s sweep replayed, as ``steptime.predict`` predicts it with the
    host costs zeroed (and ``gap`` per kernel where given), in preregister.py's columns."""
    llm = yaml.safe_load(config.read_text())["llm"]
    tau = c["tau_s"] if gap is None else gap
    basis = f"step-time model, replayed: host costs 0, {1e6 * tau:.2f} us per kernel " + (
        "(the table's, fitted on eager rows)" if gap is None else "(the replayed rows' smallest)"
    )
    revision = packaged.provenance().get("steptime_git_revision", "")
    table = []
    axes = (llm["models"], llm["batch_size"], llm["seq_len"], llm["passes"])
    for model, batch, seq, pass_name in itertools.product(*axes):
        ops = step_ops(resolve(model)[1], batch, seq, precision, pass_name)
        est = steptime.predict(replayed_params(c, gap), ops)
        eager = steptime.predict(c, ops)
        table.append(
            {
                "model": model_name(model),
                "precision": precision,
                "batch_size": batch,
                "seq_len": seq,
                "pass": pass_name,
                "status": "ok",
                "basis": f"{basis}, bound by {est['bound']}",
                "energy_j": est["energy_j"],
                "energy_j_lo": est["energy_j_lo"],
                "energy_j_hi": est["energy_j_hi"],
                "time_ms": 1e3 * est["time_s"],
                "kernels": len(ops["cls"]),
                "eager_energy_j": eager["energy_j"],
                "eager_bound": eager["bound"],
                "steptime_revision": revision,
                "transformers": transformers.__version__,
            }
        )
    table = pd.DataFrame(table)
    table.to_csv(out, index=False)
    shown = ["model", "batch_size", "seq_len", "pass", "energy_j", "time_ms", "kernels"]
    print(table[[*shown, "eager_energy_j", "eager_bound"]].to_string(index=False))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--label", default="h200")
    ap.add_argument("--config", type=Path, help="predict a model of this config's llm.models")
    ap.add_argument("--name", help="with --config: the model's name there")
    ap.add_argument("--sizes", nargs="+", default=[], help="with --config: BATCHxLENGTH ...")
    ap.add_argument("--out", type=Path, help="with --config: every step of its sweep, as CSV")
    ap.add_argument(
        "--gap",
        choices=["table", "replayed"],
        default="table",
        help="a replayed kernel's gap: the table's tau, or the replayed rows' smallest",
    )
    args = ap.parse_args()
    table = pd.read_parquet(packaged.steptime_path())
    mine = table[(table["gpu_label"] == args.label) & (table["precision"] == args.precision)]
    c = mine.iloc[0].to_dict()
    gap = None
    if args.gap == "replayed":
        gap, n = replayed_gap(c, args.label, args.precision)
        print(f"gap {1e6 * gap:.2f} us per kernel: the smallest of {n} replayed configurations")
    if args.config is None:
        check(c, args.label, args.precision, gap)
    elif args.out:
        preregister_csv(c, args.config, args.precision, gap, args.out)
    else:
        preregister(c, args.config, args.name, args.sizes, args.precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
