"""Issue 35, items 1-2: executed FLOPs of MLP shapes nobody profiled, predicted from the kernels
the library launches (``flopmetrics.ncu.executed``) and judged against Nsight Compute.

``plan`` writes the configs a GPU run needs: the training configs (thesis-grid shapes that
teach the per-output epilogue, split-K reduction and elementwise costs; none is an unseen
shape) and the unseen shapes of ``benchmarks/results/unseen_shapes_2026-12-03.json`` at
``min(n, --max-layers)`` layers (a pass's executed FLOPs are ``n L + C``, exactly linear in n:
the depth only costs ncu time). ``judge`` fits the terms on the training captures alone,
predicts every unseen config from its kernel choice (read with ``torch.profiler``, never from
its ncu rows) and prints the table.

    python benchmarks/unseen_flops.py plan --out configs.json
    benchmarks/unseen_flops_campaign.sh OUT            # on the GPU host
    python benchmarks/unseen_flops.py judge --runs OUT/ncu --choice OUT/choice [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from flopmetrics.ncu import choice, classify, gap, parse, validation
from flopmetrics.ncu.executed import ExecutedModel

UNSEEN = Path("benchmarks/results/unseen_shapes_2026-12-03.json")
TRAINING = [  # thesis grid, (d, m) of no unseen shape: the H100 set and six more
    (2, 128, 16),
    (2, 1024, 128),
    (2, 2048, 256),
    (4, 128, 112),
    (4, 512, 128),
    (4, 2048, 48),
    (8, 256, 16),
    (8, 1024, 256),
    (2, 2048, 16),
    (2, 1920, 32),
    (2, 1536, 96),
    (2, 640, 240),
    (2, 256, 208),
    (2, 1152, 64),
]


def plan(args) -> int:
    unseen = json.loads(Path(args.unseen).read_text())["shapes"]
    training = TRAINING if args.training else []
    configs = [{"n": n, "d": d, "m": m, "role": "training"} for n, d, m in training]
    configs += [
        {"n": min(s["n"], args.max_layers), "d": s["d"], "m": s["m"], "role": "unseen"}
        for s in unseen
    ]
    taken = {(c["d"], c["m"]) for c in configs if c["role"] == "training"}
    clash = [c for c in configs if c["role"] == "unseen" and (c["d"], c["m"]) in taken]
    if clash:
        raise SystemExit(f"training shapes among the unseen ones: {clash}")
    doc = {"unseen": Path(args.unseen).as_posix(), "max_layers": args.max_layers, "shapes": configs}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(configs)} configs -> {args.out}")
    return 0


def judged(launches: pd.DataFrame, training: pd.DataFrame, table: dict) -> pd.DataFrame:
    """Every MLP config of ``launches`` (classified ncu launches) predicted from its kernel
    choice in ``table`` by terms fitted on ``training`` alone, beside what ncu counted."""
    model = ExecutedModel(training[training["n"].notna()])
    measured = gap.config_totals(launches).rename(columns={"pass": "pass_"})
    runs = launches[["run", "precision"]].drop_duplicates()
    rows = []
    for precision, totals in measured.merge(runs, on="run").groupby("precision"):
        mine = choice.for_precision(table, precision)
        rows += validation.predicted(model, mine, precision, totals.drop(columns="precision"))[0]
    return pd.DataFrame(rows).rename(columns={"flops": "executed", "flops_analytic": "analytic"})


def split_roles(launches: pd.DataFrame, configs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(unseen, training) launches by the plan's roles; launches of no planned config drop."""
    roles = {(c["n"], c["d"], c["m"]): c["role"] for c in configs}
    mlp = launches[launches["n"].notna()]
    key = zip(mlp["n"].astype(int), mlp["d"].astype(int), mlp["m"].astype(int), strict=True)
    role = pd.Series([roles.get(k) for k in key], index=mlp.index)
    return mlp[role == "unseen"], mlp[role == "training"]


def read(folder: Path, pattern: str = "*") -> pd.DataFrame:
    return classify.classify(parse.read_runs(folder, pattern))


def tables(paths: list[Path]) -> dict:
    out = {}
    for path in paths:
        out.update(choice.calls_of(choice.load(path)))
    return out


def judge(args) -> int:
    configs = json.loads(Path(args.configs).read_text())["shapes"]
    unseen, training = split_roles(read(Path(args.runs)), configs)
    training = pd.concat([training, *(read(Path(t)) for t in args.train)], ignore_index=True)
    df = judged(unseen, training, tables(sorted(Path(args.choice).glob("*.json*"))))
    df["abs"] = df["error_pct"].abs()
    summary = df.groupby(["precision", "pass"])["abs"].agg(
        judged="count",
        median="median",
        largest="max",
        above_5=lambda e: int((e > 5).sum()),
    )
    pd.set_option("display.width", 200)
    print(summary.round(3).to_string())
    print(
        f"\nall: {len(df)} passes, median |error| {df['abs'].median():.3f} %, "
        f"largest {df['abs'].max():.2f} %, above 5 %: {int((df['abs'] > 5).sum())}"
    )
    print(df.sort_values("abs").tail(8).round(3).to_string(index=False))
    if args.json:
        Path(args.json).write_text(df.drop(columns="abs").to_json(orient="records", indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--out", required=True)
    p.add_argument("--max-layers", type=int, default=4)
    p.add_argument("--unseen", default=UNSEEN.as_posix(), help="the drawn shapes (JSON)")
    p.add_argument(
        "--no-training", dest="training", action="store_false", help="the unseen configs only"
    )
    p.set_defaults(run=plan)
    j = sub.add_parser("judge")
    j.add_argument("--runs", required=True, help="folder of ncu runs (<run>.csv.gz + .json)")
    j.add_argument("--choice", required=True, help="folder of kernel-choice tables")
    j.add_argument("--configs", required=True, help="the plan's configs.json")
    j.add_argument("--json", help="write every judged pass here")
    j.add_argument("--train", nargs="*", default=[], help="more folders of training ncu runs")
    j.set_defaults(run=judge)
    args = ap.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
