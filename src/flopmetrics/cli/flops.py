"""``flopmetrics flops``: the FLOPs a GPU executes for an MLP config (n, d, m), precision and
pass, predicted from the kernels the library launches (no ncu run), so that anyone can check
a prediction against Nsight Compute.

The kernel choice is read on the GPU at hand with ``torch.profiler`` (a fraction of a second)
or, with ``--choice``, from a committed table, which names the card, driver, torch and cuBLAS
it was read with; a shape the table lacks is refused, never guessed. The per-output epilogue,
split-K reduction and elementwise costs come from the training captures in ``--ncu``
(``docs/ncu.md``: how the prediction is made and how far it held on shapes nobody profiled).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..ncu import choice, classify, parse, profiler
from ..ncu.executed import ExecutedModel
from ..ncu.gap import PASSES

REFERENCE_NCU = "resources/reference/h200/ncu"  # committed H200 captures (repository root)


def _config(text: str) -> tuple[int, int, int]:
    try:
        n, d, m = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mlp {text!r}: give n,d,m (three integers)") from None
    if min(n, d, m) < 1:
        raise argparse.ArgumentTypeError(f"--mlp {text!r}: n, d and m must be at least 1")
    return n, d, m


def add(sub) -> None:
    p = sub.add_parser(
        "flops",
        help="executed FLOPs of an MLP pass, from the kernels the library launches",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--mlp", required=True, type=_config, metavar="N,D,M", help="layers, width, batch"
    )
    p.add_argument("--precision", required=True, choices=["fp32", "bf16", "fp16", "tf32"])
    p.add_argument("--pass", dest="pass_", required=True, choices=PASSES)
    p.add_argument("--choice", help="a kernel-choice table (.json or .json.gz); default: this GPU")
    p.add_argument(
        "--ncu", default=REFERENCE_NCU, help=f"training captures (default {REFERENCE_NCU})"
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    p.set_defaults(run=run)


def _table(args) -> tuple[dict, dict]:
    """(``(role, M, N, K) -> launch``, provenance) from the table or this GPU."""
    n, d, m = args.mlp
    if args.choice:
        doc = choice.load(args.choice)
    else:
        import torch  # late: reading the choice needs a GPU

        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA GPU here: give --choice TABLE (a committed kernel choice)")
        doc = {
            "gpu_name": torch.cuda.get_device_name(),
            "gpu_uuid": f"GPU-{torch.cuda.get_device_properties(0).uuid}",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "configs": [profiler.read_on_gpu(n, d, m, args.precision)],
        }
    info = {k: v for k, v in doc.items() if k != "configs"}
    return choice.for_precision(choice.calls_of(doc), args.precision), info


def run(args) -> int:
    if not Path(args.ncu).is_dir():
        raise OSError(f"--ncu {args.ncu}: no such folder of training captures")
    launches = classify.classify(parse.read_runs(args.ncu))
    model = ExecutedModel(launches[launches["n"].notna()])
    table, info = _table(args)
    n, d, m = args.mlp
    result = {**model.predict(table, args.precision, n, d, m, args.pass_), "choice": info}
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return 0
    print(f"{args.precision} {args.pass_} n{n} d{d} m{m}: {result['total']:.6g} FLOPs executed")
    for key in ("tiles", "epilogue", "split_k", "elementwise", "reduction"):
        print(f"  {key:<12}{result.get(key, 0.0):.6g}")
    for call in result["calls"]:
        print(
            f"  {call['count']} x {call['role']} M{call['M']} N{call['N']} K{call['K']}: "
            f"{call['family']} tile {call['tile']}, {call['splits']} slice(s)"
        )
    return 0
