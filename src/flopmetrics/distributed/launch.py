"""Start a distributed job's ranks with ``torchrun`` (multicast off in their environment), and
reduce their rows to the node (:mod:`flopmetrics.distributed.node`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pandas as pd

from ..contracts.schema import defaults
from ..flops.models import resolve
from ..jobs.output import write_parquet
from ..jobs.params import TIMEOUTS, job_params
from .env import with_no_multicast
from .node import node_rows


class RankFailed(RuntimeError):
    """A rank exited with an error (or was killed); the message names it."""


def run(
    params: dict, out_dir: str | Path, *, timeout_s: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run ``params["world_size"]`` ranks of ``params["job"]`` on this node; return the ranks'
    rows, the node's (one per pass) and the ranks' windows they are made of. The ranks' output
    goes to ``out_dir/ranks.log`` and, as it comes, to stderr; ``timeout_s`` bounds the whole
    job (then every rank is killed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.json"
    spec.write_text(json.dumps(params, indent=1))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={params['world_size']}",
        "-m",
        "flopmetrics.distributed.rank",
        str(spec),
        str(out),
    ]
    lines: list[str] = []
    with open(out / "ranks.log", "w") as log:
        # a session of its own: on a timeout the whole group (torchrun and its ranks) is killed
        proc = subprocess.Popen(
            cmd,
            env=with_no_multicast(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        reader = threading.Thread(target=_tee, args=(proc.stdout, log, lines), daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RankFailed(
                f"the job ran past its {timeout_s:g} s; every rank was killed; the ranks' output "
                f"is in {out / 'ranks.log'}"
            ) from None
        finally:
            reader.join(timeout=10)
    if code != 0:
        raise RankFailed(
            f"{failed_ranks(''.join(lines))} (torchrun exit {code}); "
            f"the ranks' output is in {out / 'ranks.log'}"
        )
    ranks = pd.concat(
        [pd.read_parquet(out / f"rank{r}.parquet") for r in range(params["world_size"])],
        ignore_index=True,
    )
    measured = windows(out, params["world_size"])
    return ranks, node_rows(ranks, measured), measured


def _tee(stream, log, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        log.write(line)
        log.flush()
        print(line, end="", file=sys.stderr, flush=True)


def windows(out_dir: str | Path, world_size: int, kind: str = "windows") -> pd.DataFrame:
    """Every rank's windows (``kind="trace"``: power traces), column ``rank``, as the ranks wrote
    them to ``out_dir``."""
    return pd.concat(
        [
            pd.read_parquet(Path(out_dir) / f"rank{r}_{kind}.parquet").assign(rank=r)
            for r in range(world_size)
        ],
        ignore_index=True,
    )


def job(params: dict, outputs: dict, timeouts: dict) -> None:
    """One distributed job of the pipeline (rule ``profile_distributed``): its ranks run in a
    scratch folder beside the outputs (``table``: the node's rows; ``ranks``, ``windows``,
    ``traces``); the ranks' traces, windows and rows are written, then the node's rows (their
    presence means the job finished). ``timeouts``: ``timeout_s`` (the whole job) and
    ``collective_timeout_s`` (a collective), which change no measurement and so come as
    resources, not parameters."""

    params = {**params, **{k: timeouts[k] for k in TIMEOUTS}}
    print(
        f"timeouts: the job {params['timeout_s']:g} s, a collective "
        f"{params['collective_timeout_s']:g} s",
        file=sys.stderr,
        flush=True,
    )
    folder = Path(outputs["ranks"]).parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ranks-", dir=folder) as scratch:
        ranks, node, measured = run(params, scratch, timeout_s=params["timeout_s"])
        write_parquet(windows(scratch, params["world_size"], "trace"), outputs["traces"])
        write_parquet(measured, outputs["windows"])
    write_parquet(ranks, outputs["ranks"])
    write_parquet(node, outputs["table"])
    cols = [
        "pass",
        "time_per_iter_s",
        "energy_j_per_iter",
        "energy_cv",
        "power_mean_w",
        "flops_per_j",
    ]
    print(node[cols].to_string(index=False))


def failed_ranks(output: str) -> str:
    """Which rank failed first, as torchrun's failure report says ("rank 1 failed first (exit code
    -9, SIGKILL); stopped after it: rank 0"), or "a rank failed" where it names none."""
    entry = re.compile(
        r"rank\s*:\s*(\d+).*?\n\s*exitcode\s*:\s*(-?\d+)[^\n]*?(?:\((\w+)\))?\s*$", re.M | re.S
    )
    cause, _, rest = output.partition("Root Cause")
    first = entry.search(rest)
    if not first:
        return "a rank failed"
    signal = f", {first.group(3)}" if first.group(3) else ""
    others = sorted(
        {int(r) for r, *_ in entry.findall(cause.rpartition("Failures:")[2])}
        - {int(first.group(1))}
    )
    after = f"; stopped after it: rank {', '.join(map(str, others))}" if others else ""
    return f"rank {first.group(1)} failed first (exit code {first.group(2)}{signal}){after}"


def main(argv: list[str] | None = None) -> None:
    """``python -m flopmetrics.distributed.launch``: one distributed job from the command line,
    measured with the schema's defaults (blocks ``distributed`` and ``energy``; ``--repeats`` and
    ``--min-window-s`` set two of them for a quicker look); ``node.parquet``,
    ``ranks.parquet``, ``windows.parquet`` and ``trace.parquet`` are written to ``--out``."""

    ap = argparse.ArgumentParser(
        prog="python -m flopmetrics.distributed.launch", description=main.__doc__
    )
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp")
    ap.add_argument("--scaling", choices=("weak", "strong"), default="weak")
    ap.add_argument(
        "--target", default="cuda", help="cpu (gloo), cuda or a GPU label (NCCL, one GPU per rank)"
    )
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=1024)
    schema = defaults("distributed")  # the options' defaults: the config's
    for flag, key, kind, text in (
        ("--collective-timeout", "collective_timeout_s", float, "one collective, s"),
        ("--timeout", "timeout_s", float, "the whole job, s"),
        (
            "--profile-iterations",
            "profile_iterations",
            int,
            "profiled iterations per pass after the windows (kernel and NCCL time); 0: none",
        ),
        ("--repeats", "repeats", int, "most windows per pass (fewer once precise enough)"),
        ("--min-window-s", "min_window_s", float, "shortest window, s"),
    ):
        ap.add_argument(flag, type=kind, default=schema[key], help=text)
    ap.add_argument(
        "--zeus", action="store_true", help="Zeus's monitor watches every GPU too (rank 0)"
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.min_window_s <= 0:
        ap.error("--repeats must be at least 1 and --min-window-s above 0")
    # the schema's defaults of block `distributed`, as a pipeline job with these wildcards gets them
    config = {
        "distributed": {
            **defaults("distributed"),
            "models": [args.model],
            "zeus": args.zeus,
            "profile_iterations": args.profile_iterations,
            "repeats": args.repeats,
            "min_repeats": min(args.repeats, schema["min_repeats"]),
            "min_window_s": args.min_window_s,
        },
        "energy": defaults("energy"),
        "execution": {"run_on_cpu": False},
    }
    params = job_params(
        config,
        "distributed",
        {
            "target": args.target,
            "model": resolve(args.model)[0],
            "precision": args.precision,
            "strategy": args.strategy,
            "scaling": args.scaling,
            "world_size": args.world_size,
            "batch_size": args.batch_size,
            "seq_len": args.seq_len,
        },
    )
    out = Path(args.out)
    names = {"table": "node", "ranks": "ranks", "windows": "windows", "traces": "trace"}
    outputs = {k: str(out / f"{v}.parquet") for k, v in names.items()}
    timeouts = {"timeout_s": args.timeout, "collective_timeout_s": args.collective_timeout}
    job(params, outputs, timeouts)


if __name__ == "__main__":
    main()
