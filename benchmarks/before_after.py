"""One configuration measured by the code of two trees, alternately, on one card: does a change
of the measuring code change what it measures? Each round runs the configuration once with the
tree given (``--before``, e.g. a checkout of an older commit) and once with this one, each in
a process of its own (a job's process); FLOPs must be identical and the energy of each pass
within 2 combined standard errors.

    python benchmarks/before_after.py --before OLD/src --rounds 2 --output before_after.json

Prints one line per pass and round; writes every row (both trees') as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# one configuration as the pipeline's jobs get it (the shape both trees read)
PARAMS = {
    "experiment": "llm",
    "target": "cuda",
    "precision": "bf16-mixed",
    "workload": {
        "model": "llama-3.2-1b",
        "batch_size": 8,
        "seq_len": 1024,
        "passes": ["forward", "forward_train", "forward_backward", "train_step"],
        "attn_implementation": "sdpa",
        "attention_flops": "full",
    },
    "measure": {
        "repeats": 10,
        "min_repeats": 3,
        "target_rse": 0.005,
        "min_window_s": 1.0,
        "warmup_iterations": 3,
        "seed": 0,
        "profiler_flops": False,
        "launch": "auto",
    },
    "energy": {"meter": "auto", "sampler_hz": 50, "guard_s": 0.05, "idle_baseline_s": 2.0},
}
COLUMNS = [
    *("pass", "flops", "energy_j_per_iter", "energy_j_per_iter_sem", "time_per_iter_s"),
    *("energy_cv", "launch", "gpu_uuid", "numerics", "gates_passed"),
]

RUN = """
import json, sys
from flopmetrics.jobs.run import run
from flopmetrics.jobs.spec import JobSpec
rows, _ = run(JobSpec.from_params(json.loads(sys.argv[1])))
print("ROWS" + rows[json.loads(sys.argv[2])].to_json(orient="records"))
"""


def measure(src: Path) -> list[dict]:
    path = os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(PARAMS), json.dumps(COLUMNS)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"{src}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ROWS"))
    return json.loads(line[4:])


def compare(before: list[dict], after: list[dict], rnd: int) -> list[dict]:
    out = []
    by_pass = {r["pass"]: r for r in before}
    for a in after:
        b = by_pass[a["pass"]]
        sem = math.hypot(a["energy_j_per_iter_sem"], b["energy_j_per_iter_sem"])
        diff = a["energy_j_per_iter"] - b["energy_j_per_iter"]
        r = {
            "round": rnd,
            "pass": a["pass"],
            "flops_equal": a["flops"] == b["flops"],
            "energy_before_j": b["energy_j_per_iter"],
            "energy_after_j": a["energy_j_per_iter"],
            "diff_pct": 100 * diff / b["energy_j_per_iter"],
            "combined_sems": diff / sem if sem else math.inf,
        }
        out.append(r)
        print(
            f"round {rnd} {r['pass']:16s} FLOPs equal {r['flops_equal']}, energy "
            f"{r['energy_before_j']:.3f} -> {r['energy_after_j']:.3f} J ({r['diff_pct']:+.2f} %, "
            f"{r['combined_sems']:+.2f} combined SEM)",
            flush=True,
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, type=Path, help="the other tree's src folder")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    result = {"params": PARAMS, "rounds": [], "comparison": []}
    for rnd in range(args.rounds):
        before, after = measure(args.before), measure(HERE / "src")
        result["rounds"].append({"before": before, "after": after})
        result["comparison"] += compare(before, after, rnd)
        Path(args.output).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
