"""One rank of a distributed job (started by :func:`flopmetrics.distributed.launch.run` through
``torchrun``): the causal LM under DDP or FSDP on this rank's device, every pass measured in windows
that all ranks open and close together: one row per pass written to ``OUT_DIR/rank<r>.parquet``,
every window to ``OUT_DIR/rank<r>_windows.parquet``, the raw power trace to
``OUT_DIR/rank<r>_trace.parquet``.

    python -m torch.distributed.run --standalone --nproc-per-node N -m flopmetrics.distributed.rank
    SPEC OUT_DIR
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

from ..contracts.vocabulary import SCALINGS, STRATEGIES
from ..energy.nvml import cuda_uuid
from ..jobs import provenance
from ..jobs.kernels import add_kernel_columns, profile_steps
from ..jobs.output import write_parquet
from ..jobs.rows import label_trace
from ..jobs.run import Counts, build, measure_configuration
from ..jobs.session import Session
from ..jobs.spec import JobSpec
from ..jobs.targets import resolve_target
from .env import NO_MULTICAST, check_no_multicast
from .monitor import RankMonitor
from .node import window_table


def main(spec_file: str, out_dir: str) -> None:
    check_no_multicast()
    params = json.loads(Path(spec_file).read_text())
    rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    spec = JobSpec.from_params(params["job"])
    cuda = resolve_target(spec.target, spec.run_on_cpu)[0] != "cpu"  # run_on_cpu: gloo on the CPU
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    # a rank that stops answering fails the others' collectives after this long, instead of a hang
    # device_id binds this rank's communicator to its GPU (NCCL would otherwise guess it from the
    # rank)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        timeout=timedelta(seconds=params["collective_timeout_s"]),
        device_id=torch.device(device) if cuda else None,
    )
    try:
        rows, windows, trace = measure(
            spec,
            device,
            {
                "rank": rank,
                "local_rank": local_rank,
                "world_size": world,
                "strategy": params["strategy"],
                "scaling": params["scaling"],
            },
            zeus=bool(params.get("zeus")) and rank == 0,
            profile_iterations=int(params.get("profile_iterations", 0)),
        )
        write_parquet(trace, Path(out_dir) / f"rank{rank}_trace.parquet")
        write_parquet(windows, Path(out_dir) / f"rank{rank}_windows.parquet")
        write_parquet(rows, Path(out_dir) / f"rank{rank}.parquet")
    finally:
        dist.destroy_process_group()


def say(rank: int):
    return lambda message: print(f"[rank {rank}] {message}", file=sys.stderr, flush=True)


def measure(
    spec: JobSpec, device: str, identity: dict, zeus: bool = False, profile_iterations: int = 0
):
    """This rank's rows, windows and power trace: the step under DDP or FSDP (full sharding),
    windows at barriers, this rank's meters. Weak scaling: ``batch_size`` per rank; strong:
    ``batch_size`` in all, split over the ranks. Under DDP the job also measures
    ``forward_backward_local``, the step without gradient synchronization (``no_sync``), from which
    ``communication`` is derived. With ``zeus`` (rank 0 of a GPU job) Zeus's monitor watches every
    GPU of the node over the same windows: an independent reading of the node's energy (column
    ``energy_zeus_j``). After the windows, ``profile_iterations`` iterations of each pass under
    ``torch.profiler`` give its GPU kernel time and NCCL's (:mod:`flopmetrics.jobs.kernels`)."""
    strategy, scaling, world = identity["strategy"], identity["scaling"], identity["world_size"]
    if strategy not in STRATEGIES or scaling not in SCALINGS:
        raise ValueError(
            f"strategy must be one of {STRATEGIES} and scaling one of {SCALINGS}; "
            f"got {strategy!r}, {scaling!r}"
        )
    progress = say(identity["rank"])
    # the datasheet entry of the GPU this rank got (a generic target such as 'cuda' has none of
    # its own) judges each row; one node: local ranks 0..N-1 are cuda:0..N-1
    zeus_gpus = range(world) if zeus else None
    session = Session.open(
        spec,
        device=device,
        monitor_type=lambda d, meters: RankMonitor(d, meters, zeus_gpus),
        progress=progress,
    )
    check_mapping(device, session.setup)
    workload = build(session, _rank_spec(spec, scaling, world))
    steps = wrap(workload, strategy, device)
    base = {
        "experiment": spec.experiment,
        **identity,
        **{f"env_{k}": os.environ.get(k, "") for k in NO_MULTICAST},
        "target": spec.target,
        **session.columns,
        **provenance.collect(device, {**spec.params(), **identity}),
        # the node's other ranks hold contexts on its GPUs: they are this job, not a neighbour
        "other_processes": 0,
    }
    with workload.precision_scope(), session.sampling():
        session.measure_idle(spec)
        counted = workload.counted()
        if "forward_backward_local" in steps:
            counted["forward_backward_local"] = counted["forward_backward"]  # the same arithmetic
        rows, windows = measure_configuration(session, spec, workload, steps, Counts(counted), base)
        # the raw trace, each sample labelled with its window (none without a sampler: a CPU)
        trace = session.trace_since(0.0)
        if trace.empty:
            trace = pd.DataFrame({"t": pd.Series(dtype=float)})
        else:
            trace = label_trace(trace, windows, session.idle.get("_window"))
        kernels = profile_steps(steps, profile_iterations, device)
    rows = add_kernel_columns(rows, kernels, profile_iterations)
    trace = trace.assign(
        rank=identity["rank"], gpu_uuid=base["gpu_uuid"], config_hash=rows["config_hash"].iloc[0]
    )
    return rows, window_table(windows), trace


def _rank_spec(spec: JobSpec, scaling: str, world: int) -> JobSpec:
    """``spec`` as one rank builds it: weak scaling keeps ``batch_size`` per rank, strong splits
    it over the ranks."""
    if scaling != "strong":
        return spec
    batch = spec.workload["batch_size"]
    if batch % world:
        raise ValueError(
            f"strong scaling splits batch_size {batch} over {world} ranks: it must divide evenly"
        )
    return dataclasses.replace(spec, workload={**spec.workload, "batch_size": batch // world})


def check_mapping(device: str, setup) -> None:
    """The GPU this rank meters must be the one it computes on: NVML and CUDA number devices
    differently, so compare UUIDs (a mix-up would give every rank some other rank's energy)."""
    if setup.gpu is None:
        return
    computes = cuda_uuid(torch.device(device).index)
    if computes != setup.gpu.uuid():
        raise RuntimeError(f"{device} is {computes} but its energy meter reads {setup.gpu.uuid()}")


def wrap(workload, strategy: str, device: str) -> dict:
    """Wrap the workload's model for ``strategy``; return the steps to measure, in order."""
    if strategy == "fsdp":
        for layer in workload.model.model.layers:  # one unit per decoder layer, then the rest
            fully_shard(layer)
        fully_shard(workload.model)
        workload.sharded = True
        workload._build_optimizer()  # over the sharded parameters
        steps = workload.steps()
        return {p: steps[p] for p in workload.passes}

    ddp = DistributedDataParallel(
        workload.model, device_ids=[torch.device(device)] if device != "cpu" else None
    )
    workload.model = ddp
    steps = workload.steps()
    out = {p: steps[p] for p in workload.passes}
    if "forward_backward" in out:

        def local(step=steps["forward_backward"]):
            with ddp.no_sync():
                return step()

        out["forward_backward_local"] = local
    return out


if __name__ == "__main__":
    main(*sys.argv[1:])
