"""Start a distributed job's ranks with ``torchrun`` (multicast off in their environment), and
reduce their rows to the node: energy summed over ranks, time that of the slowest rank."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from .env import with_no_multicast


class RankFailed(RuntimeError):
    """A rank exited with an error (or was killed); the message names it."""


def run(params: dict, out_dir: str | Path, *, timeout_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``params["world_size"]`` ranks of ``params["job"]`` on this node; return the ranks'
    rows and the node's (one per pass). ``timeout_s`` bounds the whole job."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.json"
    spec.write_text(json.dumps(params, indent=1))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={params['world_size']}",
           "-m", "flopmetrics.distributed.rank", str(spec), str(out)]
    proc = subprocess.run(cmd, env=with_no_multicast(), capture_output=True, text=True, timeout=timeout_s)
    (out / "ranks.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RankFailed(f"{failed_ranks(proc.stdout + proc.stderr)} (torchrun exit {proc.returncode}); "
                         f"the ranks' output is in {out / 'ranks.log'}")
    ranks = pd.concat([pd.read_parquet(out / f"rank{r}.parquet") for r in range(params["world_size"])],
                      ignore_index=True)
    return ranks, node_rows(ranks)


def failed_ranks(output: str) -> str:
    """Which rank failed first, as torchrun's failure report says ("rank 1 failed first (exit code
    -9, SIGKILL); stopped after it: rank 0"), or "a rank failed" where it names none."""
    entry = re.compile(r"rank\s*:\s*(\d+).*?\n\s*exitcode\s*:\s*(-?\d+)[^\n]*?(?:\((\w+)\))?\s*$", re.M | re.S)
    cause, _, rest = output.partition("Root Cause")
    first = entry.search(rest)
    if not first:
        return "a rank failed"
    signal = f", {first.group(3)}" if first.group(3) else ""
    others = sorted({int(r) for r, *_ in entry.findall(cause.rpartition("Failures:")[2])} - {int(first.group(1))})
    after = f"; stopped after it: rank {', '.join(map(str, others))}" if others else ""
    return f"rank {first.group(1)} failed first (exit code {first.group(2)}{signal}){after}"


def node_rows(ranks: pd.DataFrame) -> pd.DataFrame:
    """One row per pass for the node: FLOPs, energy and dynamic energy (above each rank's idle
    baseline) summed over the ranks, the time of the slowest rank, FLOPs/J of the node."""
    g = ranks.groupby("pass", sort=False)
    node = g.agg(world_size=("world_size", "first"), strategy=("strategy", "first"), scaling=("scaling", "first"),
                 flops=("flops", "sum"), energy_j_per_iter=("energy_j_per_iter", lambda e: e.sum(min_count=len(e))),
                 dynamic_energy_j_per_iter=("dynamic_energy_j_per_iter", lambda e: e.sum(min_count=len(e))),
                 time_per_iter_s=("time_per_iter_s", "max"), ranks=("rank", "count"),
                 gpu_uuids=("gpu_uuid", lambda u: ",".join(u))).reset_index()
    node["flops_per_j"] = node["flops"] / node["energy_j_per_iter"]
    node["power_w"] = node["energy_j_per_iter"] / node["time_per_iter_s"]
    node["rank"] = -1  # the node, not a rank
    return node


def main(argv: list[str] | None = None) -> None:
    """``python -m flopmetrics.distributed.launch``: one distributed job from the command line,
    measured with the schema's LLM and energy defaults; ``ranks.parquet`` and ``node.parquet``
    are written to ``--out``."""
    import argparse

    from ..jobs.output import write_parquet
    from ..workflow.schema import defaults

    ap = argparse.ArgumentParser(prog="python -m flopmetrics.distributed.launch", description=main.__doc__)
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp")
    ap.add_argument("--scaling", choices=("weak", "strong"), default="weak")
    ap.add_argument("--target", default="cuda", help="cpu (gloo), cuda or a GPU label (NCCL, one GPU per rank)")
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--collective-timeout", type=float, default=300)
    ap.add_argument("--timeout", type=float, default=1800, help="the whole job, seconds")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    llm, energy = defaults("llm"), defaults("energy")
    cpu = args.target == "cpu"
    params = {"world_size": args.world_size, "strategy": args.strategy, "scaling": args.scaling,
              "collective_timeout_s": args.collective_timeout,
              "job": {"experiment": "llm", "target": args.target, "precision": args.precision,
                      "workload": {"model": args.model, "batch_size": args.batch_size, "seq_len": args.seq_len,
                                   **{k: llm[k] for k in ("passes", "attn_implementation", "attention_flops")}},
                      "measure": {k: llm[k] for k in ("repeats", "min_repeats", "target_rse", "min_window_s",
                                                      "warmup_iterations", "seed", "profiler_flops", "launch")},
                      "energy": {"meter": energy["meter"], "sampler_hz": None if cpu else energy["sampler_hz"],
                                 "guard_s": None if cpu else energy["guard_s"],
                                 "idle_baseline_s": energy["idle_baseline_s"]}}}
    ranks, node = run(params, args.out, timeout_s=args.timeout)
    write_parquet(ranks, Path(args.out) / "ranks.parquet")
    write_parquet(node, Path(args.out) / "node.parquet")
    cols = ["pass", "ranks", "time_per_iter_s", "energy_j_per_iter", "power_w", "flops_per_j"]
    print(node[cols].to_string(index=False))


if __name__ == "__main__":
    main()
