"""Run passes inside Nsight Compute's profiled region, each pass between two marker kernels.

Run under ``ncu --profile-from-start off`` (see :func:`flopmetrics.ncu.metrics.command`): set-up
and warm-up run outside the profiled region (``cudaProfilerStart/Stop``), so no set-up kernel is
ever counted; inside it, each pass is preceded and followed by a marker kernel
(``torch.cuda._sleep``: PyTorch's ``spin_kernel``, which nothing else launches), and the
manifest written next to the report names the passes in order. Launches are assigned to passes
by the markers' identity, never by counting rows; NVTX ranges name the same passes for a reader
of the report in the Nsight Compute GUI.

    python -m flopmetrics.ncu.capture --precision fp16 --mlp 4,1024,256 2,128,16 \
        --llm llama-3.2-1b:2:8:256 --gemm 4096,4096,4096 --manifest out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from ..flops.counted import count_flops
from ..flops.models import build_causal_lm, resolve
from ..workloads import causal_lm, optape
from ..workloads.mlp import build_mlp
from ..workloads.precision import get_precision, matmul_precision, parse_precision
from .metrics import MARKER


def mark() -> None:
    torch.cuda._sleep(1)


def profiled(passes: dict, label: str, manifest: list) -> None:
    """Warm every pass up (unprofiled), then run each once inside the profiled region."""
    for fn in passes.values():
        fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for name, fn in passes.items():
        mark()
        torch.cuda.nvtx.range_push(f"{label}/{name}")
        fn()
        torch.cuda.nvtx.range_pop()
        manifest.append({"label": label, "pass": name})
    mark()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()


def mlp_passes(n: int, d: int, m: int, precision: str, device: str):
    base, _ = parse_precision(precision)
    model, x = build_mlp(n, d, m, get_precision(base), device)
    state = {}

    def forward():  # grad-enabled, as in training: the same kernels as inference here
        state["y"] = model(x)

    def loss():
        state["loss"] = state["y"].sum()  # the thesis's loss, reduced on the GPU

    def backward():
        model.zero_grad(set_to_none=True)
        state["loss"].backward()

    return {"forward": forward, "loss": loss, "backward": backward}


def gemm_passes(mm: int, nn: int, kk: int, precision: str, device: str):
    dtype = get_precision(parse_precision(precision)[0]).dtype
    a = torch.randn(mm, kk, device=device, dtype=dtype)
    b = torch.randn(kk, nn, device=device, dtype=dtype)
    return {"gemm": lambda: a @ b}


def llm_passes(shape: str, precision: str, device: str, counted: dict):
    """The forward and backward of the causal LM ``shape`` (``name:layers:batch:seq``, layers 0
    for the model's own); ``counted`` receives FlopCounterMode's count of each."""
    model_name, layers, batch, seq = shape.split(":")
    layers, batch, seq = int(layers), int(batch), int(seq)

    _, fields = resolve(model_name)
    fields = {**fields, "num_hidden_layers": layers} if layers else fields
    base, _ = parse_precision(precision)
    model = build_causal_lm(fields, "sdpa", device).to(dtype=get_precision(base).dtype)
    model.train()
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device)
    state = {}

    def forward():
        state["loss"] = model(input_ids=ids, labels=ids).loss

    def backward():
        model.zero_grad(set_to_none=True)
        state["loss"].backward()

    counted["forward"] = count_flops(forward).by_op
    forward()
    counted["backward_and_forward"] = count_flops(lambda: (forward(), backward())).by_op
    return {"forward": forward, "backward": backward}


def shape_workload(shape: str) -> dict:
    """The causal-LM workload (as the pipeline's ``llm`` experiment declares one) of ``shape``,
    ``name:layers:batch:seq``: the preset ``name``, cut to ``layers`` (0: its own)."""
    model_name, layers, batch, seq = shape.split(":")
    _, fields = resolve(model_name)
    if int(layers):
        fields = {**fields, "num_hidden_layers": int(layers)}
    fields = {"name": f"{model_name}-layers{layers}", **fields}
    return {"model": fields, "batch_size": int(batch), "seq_len": int(seq)}


def class_label(shape: str) -> str:
    """The label of a class capture of ``shape`` (``name:layers:batch:seq``), with the layer
    count the model runs (0 resolved to the preset's own)."""
    name, layers, batch, seq = shape.split(":")
    count = int(layers) or resolve(name)[1]["num_hidden_layers"]
    return f"llm classes {name} layers{count} b{batch} s{seq}"


def llm_class_passes(shape: str, precision: str, device: str, record: dict):
    """The train step of the causal LM ``shape`` (``name:layers:batch:seq``) as the pipeline's
    job runs it (:mod:`flopmetrics.workloads.causal_lm`, eager), then each operation class's
    share of that step replayed alone (:mod:`flopmetrics.workloads.optape`), as passes
    ``train_step`` and ``class:<class>``; ``record`` receives the counter's FLOPs per operator
    and per class, the operations per class and what the replay leaves out."""
    lm = causal_lm.build(device, precision, shape_workload(shape), seed=0)
    step = lm.steps()["train_step"]
    with lm.precision_scope():
        step()  # first-use work (the optimizer's state) stays out of the tape
        record["flop_counter"] = count_flops(step).by_op
        tape = optape.record(step, device, lm.optimizer)
        replays = tape.replays()
        record["counted_by_class"] = {c: count_flops(fn).total for c, fn in replays.items()}
    record["operations"] = tape.counts()
    record["skipped"] = dict(tape.skipped)
    record["parameters"] = lm.parameters
    return {"train_step": step, **{f"class:{c}": fn for c, fn in replays.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precision", required=True, choices=["fp32", "tf32", "fp16", "bf16"])
    ap.add_argument("--mlp", nargs="*", default=[], help="n,d,m")
    ap.add_argument("--gemm", nargs="*", default=[], help="M,N,K")
    ap.add_argument("--llm", nargs="*", default=[], help="model:layers:batch:seq (layers 0 = all)")
    ap.add_argument(
        "--llm-classes",
        nargs="*",
        default=[],
        help="model:layers:batch:seq: the train step, then each operation class replayed alone",
    )
    ap.add_argument("--manifest", required=True)
    args = ap.parse_args(argv)
    device = "cuda"
    manifest, counted, classes = [], {}, {}
    start = time.perf_counter()
    with matmul_precision(get_precision(args.precision)):
        for spec in args.gemm:
            mm, nn, kk = (int(v) for v in spec.split(","))
            profiled(
                gemm_passes(mm, nn, kk, args.precision, device), f"gemm M{mm} N{nn} K{kk}", manifest
            )
        for i, spec in enumerate(args.mlp):
            n, d, m = (int(v) for v in spec.split(","))
            profiled(mlp_passes(n, d, m, args.precision, device), f"mlp n{n} d{d} m{m}", manifest)
            print(
                f"[capture {args.precision}] mlp {i + 1}/{len(args.mlp)} n{n} d{d} m{m} "
                f"({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        for spec in args.llm:
            name, layers, batch, seq = spec.split(":")
            label = f"llm {name} layers{layers} b{batch} s{seq}"
            counted[label] = {}
            profiled(llm_passes(spec, args.precision, device, counted[label]), label, manifest)
        for spec in args.llm_classes:
            label = class_label(spec)
            classes[label] = {}
            passes = llm_class_passes(spec, args.precision, device, classes[label])
            profiled(passes, label, manifest)
            print(
                f"[capture {args.precision}] {label}: {classes[label]['operations']}",
                file=sys.stderr,
            )
    with open(args.manifest, "w") as fh:
        json.dump(
            {
                "precision": args.precision,
                "marker": MARKER,
                "passes": manifest,
                "flop_counter": counted,
                "operation_classes": classes,
                "device": torch.cuda.get_device_name(),
                "gpu_uuid": f"GPU-{torch.cuda.get_device_properties(0).uuid}",
                "torch": torch.__version__,
            },
            fh,
            indent=1,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
