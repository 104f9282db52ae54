"""The Nsight Compute metrics we collect per kernel launch, and the FLOPs they make.

SIMT (per-thread instruction counts, predicated-on threads only):
  fp32 = 2 FFMA + FADD + FMUL;  fp64 = 2 DFMA + DADD + DMUL;
  fp16/bf16 = 2 (2 HFMA + HADD + HMUL): HFMA2/HADD2/HMUL2 work on two packed values (an
  unpacked half instruction is counted as a packed one: an upper bound for such code).
Tensor cores (Hopper ``sm__ops_path_tensor_src_*``, both the HMMA and the HGMMA paths): math ops
by source precision, converted to FLOPs by :data:`TENSOR_FLOPS_PER_OP`, measured on GEMMs of known
size (``resources/reference/h100/ncu``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

SIMT = {
    "fp32": {"ffma": 2, "fadd": 1, "fmul": 1},
    "fp16": {"hfma": 4, "hadd": 2, "hmul": 2},
}
TENSOR = {  # our precision name -> ncu source-precision metric
    "fp16": "sm__ops_path_tensor_src_fp16.sum",
    "bf16": "sm__ops_path_tensor_src_bf16_dst_fp32.sum",
    "tf32": "sm__ops_path_tensor_src_tf32_dst_fp32.sum",
}
# not collected (each metric costs replay passes, and no workload here runs them): their FLOP
# columns are NaN, never 0
NOT_COLLECTED = ("fp64 SIMT", "fp64 tensor", "fp8 tensor")
# between two passes the capture launches this kernel (``torch.cuda._sleep``), which nothing else
# launches
MARKER = "spin_kernel"
TENSOR_FLOPS_PER_OP = 1.0  # checked against 2MNK on the H100 (see tests/test_ncu.py)
OTHER = ("gpu__time_duration.sum", "sm__inst_executed_pipe_tensor.sum")


def simt_metric(op: str) -> str:
    return f"smsp__sass_thread_inst_executed_op_{op}_pred_on.sum"


def metrics() -> list[str]:
    simt = [simt_metric(op) for ops in SIMT.values() for op in ops]
    return simt + list(TENSOR.values()) + list(OTHER)


def capture_command(
    precision: str, manifest: str, mlp=(), gemm=(), llm=(), llm_classes=()
) -> list[str]:
    """The capture (:mod:`flopmetrics.ncu.capture`) of MLP configs ``(n, d, m)``, GEMMs
    ``(M, N, K)`` and LLM shapes ``model:layers:batch:seq`` in one precision; ``llm_classes``:
    LLM shapes whose train step is captured whole and then one operation class at a time."""

    def join(shapes):
        return [",".join(map(str, s)) for s in shapes]

    return [
        "python3",
        "-m",
        "flopmetrics.ncu.capture",
        "--precision",
        precision,
        "--manifest",
        manifest,
        "--gemm",
        *join(gemm),
        "--mlp",
        *join(mlp),
        "--llm",
        *llm,
        "--llm-classes",
        *llm_classes,
    ]


def command(report: str, argv: list[str], launch_count: int = 0) -> list[str]:
    """``ncu`` around ``argv`` (a capture run): profiled region only, every launch (or the first
    ``launch_count``: the run then goes on unprofiled and the report is still written, a
    time-bounded capture keeps the passes it finished), our metrics and the launch statistics
    (grid, block), written to ``report`` (``.ncu-rep``)."""
    limit = ["--launch-count", str(launch_count)] if launch_count > 0 else []
    return [
        "ncu",
        *limit,
        "--profile-from-start",
        "off",
        "--target-processes",
        "all",
        "--replay-mode",
        "kernel",
        "--section",
        "LaunchStats",
        "--metrics",
        ",".join(metrics()),
        "--nvtx",
        "--export",
        report,
        "--force-overwrite",
        *argv,
    ]


def export_command(report: str) -> list[str]:
    """The report as CSV, one row per launch, one column per metric (``--page raw``)."""
    return ["ncu", "--import", report, "--csv", "--page", "raw"]


class NcuError(RuntimeError):
    pass


def run(report: str, argv: list[str], csv_path: str, launch_count: int = 0) -> None:
    """Profile ``argv`` under ncu into ``report`` and export it to ``csv_path``; a missing ncu,
    missing permission to read the GPU's counters or a failed run is a clear error."""
    if shutil.which("ncu") is None:
        raise NcuError(
            "ncu (Nsight Compute 2025.3 or later) is not on PATH: install it, or profile on a "
            "host that has it"
        )
    proc = subprocess.Popen(
        command(report, argv, launch_count),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in proc.stdout:  # ncu's per-kernel progress, passed on as it comes
        sys.stderr.write(line)
        lines.append(line)
    proc.wait()
    output = "".join(lines)
    if "ERR_NVGPUCTRPERM" in output:
        raise NcuError(
            "ncu may not read this GPU's performance counters (ERR_NVGPUCTRPERM): run as root, or "
            "load the driver with NVreg_RestrictProfilingToAdminUsers=0"
        )
    if proc.returncode != 0:
        raise NcuError(f"ncu exited with {proc.returncode}:\n{output[-2000:]}")
    with open(csv_path, "w") as fh:
        export = subprocess.run(
            export_command(report), stdout=fh, stderr=subprocess.PIPE, text=True
        )
    if export.returncode != 0:
        raise NcuError(f"ncu --import {report} failed: {export.stderr[-1000:]}")
