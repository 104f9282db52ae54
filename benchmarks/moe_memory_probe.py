"""Where a mixture of experts' GPU memory goes in the pipeline's workload (issue 32: every
Qwen1.5-MoE-A2.7B configuration of the fourteenth held-out set stopped out of memory, its
forward at 4 x 256 after seven windows). Builds the workload as a job does, after another
model's train step in the same process (a worker serves many configurations), and prints the
allocator's statistics after each stage and every 20 forward iterations.

    python benchmarks/moe_memory_probe.py --config config/heldout14_moe_h200.yaml \
        --before granite-3.0-3b-a800m --model qwen1.5-moe-a2.7b --out FILE.json
"""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path

import torch
import yaml

from flopmetrics.workloads import causal_lm


def gib() -> dict:
    return {
        "allocated_gib": torch.cuda.memory_allocated() / 2**30,
        "reserved_gib": torch.cuda.memory_reserved() / 2**30,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--before", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    llm = yaml.safe_load(args.config.read_text())["llm"]
    models = {m["name"]: m for m in llm["models"]}
    stages = []

    def note(stage: str) -> None:
        torch.cuda.synchronize()
        stages.append({"stage": stage, **gib()})
        print(stages[-1], flush=True)

    def workload(name: str, batch: int, seq: int) -> dict:
        return {"model": models[name], "batch_size": batch, "seq_len": seq}

    first = causal_lm.build("cuda", "bf16", workload(args.before, 16, 256), 0)
    first.steps()["train_step"]()
    note(f"{args.before} after a train step")
    held = [first]  # as the pipeline's worker holds it: the only reference, handed over
    del first
    second = causal_lm.build("cuda", "bf16", workload(args.model, 4, 256), 0, held.pop())
    note(f"{args.model} built, the first workload handed over")
    gc.collect()
    note("after gc.collect()")
    second.counted()
    note("FLOPs counted")
    forward = second.steps()["forward"]
    for i in range(1, 161):
        out = forward()
        if i % 20 == 0:
            note(f"forward x{i}")
        if i % 40 == 0:
            second.restore()
            note(f"restored after forward x{i}")
    del out
    args.out.write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "stages": stages}))


if __name__ == "__main__":
    main()
