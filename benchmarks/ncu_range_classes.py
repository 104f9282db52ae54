"""Executed FLOPs per operation class of a whole causal-LM train step under Nsight Compute's
application range replay (issue 35, item 4): one profiled range per pass, not one per launch.

Kernel replay (:mod:`flopmetrics.ncu.capture`) costs ~0.3 s per launch, too long for the
several thousand launches of Llama-3.2-1B's 16-layer step. Here each pass of
:func:`flopmetrics.ncu.capture.llm_class_passes` (the eager train step, then each operation
class replayed alone along the step's dataflow) runs once between ``cudaProfilerStart`` and
``cudaProfilerStop``, and ncu reports the metrics summed over each range's kernels.

What the H200 allowed (2026-12-04, `GPU-4c71a465`, ncu 2025.3.1; docs/ncu.md):
- ``--replay-mode range`` refuses the SIMT instruction metrics (``smsp__sass_*``: fp32's FFMA,
  every elementwise FLOP) and stops at the step's range (a kernel in it calls
  ``cuKernelSetAttribute``, which a range may not);
- ``--replay-mode app-range`` runs the whole program once per metric pass and accepts any API:
  with the three tensor-core metrics and the time it finished 3 passes of the full step's six
  ranges in 120 s, about 30 s per pass; not yet to the end. Each metric costs passes:
  ``metrics --precision bf16`` gives the one tensor-core metric of that precision and the time.

On the GPU machine (ncu as root; ``--clock-control none``: ncu leaves the clocks as they are):
    M=$(python benchmarks/ncu_range_classes.py metrics --precision bf16)
    ncu --replay-mode app-range --clock-control none --metrics "$M" \\
        --export OUT/bf16 --force-overwrite \\
        python benchmarks/ncu_range_classes.py capture --precision bf16 \\
            --shapes llama-3.2-1b:0:8:256 --manifest OUT/bf16.json
    ncu --import OUT/bf16.ncu-rep --csv --page raw > OUT/bf16.csv
Then, anywhere:
    python benchmarks/ncu_range_classes.py judge OUT/bf16.json OUT/bf16.csv [...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def profiled_range(device: str):
    """One range of ncu's range replay (on the CPU, for a dry run: none)."""
    import torch

    if device == "cpu":
        yield
        return
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    yield
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def marked(fn, name: str, device: str) -> None:
    """``fn`` between two marker kernels, in an NVTX range ``name`` (as the kernel-replay
    capture runs its passes, so :func:`flopmetrics.ncu.parse.read_report_csv` reads it)."""
    import torch

    from flopmetrics.ncu.capture import mark

    if device == "cpu":
        fn()
        return
    mark()
    torch.cuda.nvtx.range_push(name)
    fn()
    torch.cuda.nvtx.range_pop()
    mark()


def capture(args) -> int:
    import torch

    from flopmetrics.ncu.capture import class_label, llm_class_passes
    from flopmetrics.workloads.precision import get_precision, matmul_precision

    manifest = {"precision": args.precision, "passes": [], "operation_classes": {}}
    with matmul_precision(get_precision(args.precision)):
        for shape in args.shapes:
            record, label = {}, class_label(shape)
            passes = llm_class_passes(shape, args.precision, args.device, record)
            for fn in passes.values():  # warm-up: the caching allocator holds every block after
                fn()
            for name, fn in passes.items():
                if args.passes and name not in args.passes:
                    continue
                with profiled_range(args.device):
                    if args.per_launch:  # a marker on each side: the launches are split by pass
                        marked(fn, f"{label}/{name}", args.device)
                    else:
                        fn()
                manifest["passes"].append({"label": label, "pass": name})
                print(f"[range] {label} {name}", file=sys.stderr, flush=True)
            manifest["operation_classes"][label] = {
                k: record[k] for k in ("counted_by_class", "operations", "parameters")
            }
            del passes, record
    cuda = args.device == "cuda"
    manifest["device"] = torch.cuda.get_device_name() if cuda else "cpu"
    manifest["gpu_uuid"] = f"GPU-{torch.cuda.get_device_properties(0).uuid}" if cuda else ""
    manifest["torch"] = torch.__version__
    with open(args.manifest, "w") as fh:
        json.dump(manifest, fh, indent=1)
    return 0


def per_launch_export(csv_path: str) -> bool:
    """Whether the export has a row per launch (the capture's markers among them), not one
    per range."""
    from flopmetrics.ncu.metrics import MARKER

    names = pd.read_csv(csv_path, usecols=["Kernel Name"], dtype=str)["Kernel Name"]
    return bool(names.str.contains(MARKER, regex=False).any())


def launch_rows(csv_path: str, manifest: dict) -> pd.DataFrame:
    """A per-launch export (``--per-launch`` under ``--replay-mode application``) summed into
    one row per pass, in the manifest's order."""
    from flopmetrics.ncu.parse import read_report_csv

    passes = manifest["passes"]
    launches = read_report_csv(csv_path, passes)
    if launches.attrs.get("incomplete"):
        raise SystemExit(f"{csv_path}: {launches.attrs['incomplete']}")
    sums = launches.groupby(["label", "pass"], sort=False)[["flops", "duration_s"]].sum()
    order = [(p["label"], p["pass"]) for p in passes]
    return sums.reindex(order).reset_index(drop=True)


def range_rows(csv_path: str) -> pd.DataFrame:
    """The ranges of a ``--page raw`` export, in order, with their FLOP columns."""
    from flopmetrics.ncu.parse import _flops

    raw = pd.read_csv(csv_path, low_memory=False, dtype=str)
    time = "gpu__time_duration.sum"
    if time not in raw:
        raise SystemExit(f"{csv_path}: no {time} column: not an ncu --page raw export of ours")

    def numbers(column: pd.Series) -> pd.Series:
        return pd.to_numeric(column.str.replace(",", "", regex=False), errors="coerce")

    raw = raw[numbers(raw[time]).notna()].reset_index(drop=True)  # the units row is text

    def metric(name):
        return numbers(raw[name]) if name in raw else None

    out = _flops(metric)
    out["duration_s"] = metric("gpu__time_duration.sum") / 1e3  # the export reports ms
    return out


def judge(args) -> int:
    rows = []
    for manifest_path, csv_path in zip(args.files[::2], args.files[1::2], strict=True):
        manifest = json.loads(open(manifest_path).read())
        per_launch = per_launch_export(csv_path)
        ranges = launch_rows(csv_path, manifest) if per_launch else range_rows(csv_path)
        if len(ranges) != len(manifest["passes"]):
            raise SystemExit(
                f"{csv_path}: {len(ranges)} ranges, the manifest lists {len(manifest['passes'])}"
            )
        for spec, (_, r) in zip(manifest["passes"], ranges.iterrows(), strict=True):
            info = manifest["operation_classes"][spec["label"]]
            cls = spec["pass"].removeprefix("class:")
            counted = info["counted_by_class"].get(cls) if cls != spec["pass"] else None
            rows.append(
                {
                    "capture": Path(manifest_path).stem,
                    "gpu_uuid": manifest["gpu_uuid"],
                    "precision": manifest["precision"],
                    "shape": spec["label"],
                    "pass": spec["pass"],
                    "operations": info["operations"].get(cls),
                    "executed_flops": r["flops"],
                    "counted_flops": counted,
                    "executed_over_counted": r["flops"] / counted if counted else float("nan"),
                    "gpu_time_ms": 1e3 * r["duration_s"],
                }
            )
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(df.to_string(index=False))
    for (_, prec, shape), g in df.groupby(["capture", "precision", "shape"], sort=False):
        if "train_step" not in set(g["pass"]):
            continue  # a capture of some classes only: nothing to add them up against
        step = g.loc[g["pass"] == "train_step", "executed_flops"].sum()
        classes = g.loc[g["pass"] != "train_step", "executed_flops"].sum()
        print(
            f"{prec} {shape}: the classes replayed alone executed {classes:.4e} FLOPs, the step "
            f"{step:.4e} ({100 * (classes / step - 1):+.3f} %)"
        )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("metrics", help="the metrics a range replay can collect, comma-separated")
    m.add_argument("--precision", choices=["bf16", "fp16", "tf32"], help="its tensor metric only")
    c = sub.add_parser("capture", help="run the passes, one profiled range each (under ncu)")
    c.add_argument("--precision", required=True, choices=["fp32", "bf16", "fp16"])
    c.add_argument("--shapes", nargs="+", required=True, help="model:layers:batch:seq")
    c.add_argument("--manifest", required=True)
    c.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a dry run")
    c.add_argument("--passes", nargs="*", help="profile these passes only (default: all)")
    c.add_argument(
        "--per-launch",
        action="store_true",
        help="markers around each pass, for ncu's per-launch replays (SASS metrics allowed)",
    )
    j = sub.add_parser("judge", help="executed FLOPs per class against the counted ones")
    j.add_argument("files", nargs="+", help="MANIFEST CSV [MANIFEST CSV ...]")
    args = ap.parse_args()
    if args.command == "metrics":
        from flopmetrics.ncu.metrics import TENSOR

        # range replays take no SASS-patched metric: the tensor cores' ops and the time only
        tensor = [TENSOR[args.precision]] if args.precision else list(TENSOR.values())
        print(",".join([*tensor, "gpu__time_duration.sum"]))
        return 0
    return capture(args) if args.command == "capture" else judge(args)


if __name__ == "__main__":
    sys.exit(main())
