#!/usr/bin/env bash
# Issue 16's measurements on one multi-GPU host (DDP at 1 and 2 ranks ran on two H200s on
# 2026-11-27 until the gates, which then failed on the generic target; fixed): the interconnect as
# `nvidia-smi topo -m` shows it, then the causal LM under DDP and FSDP (full sharding), weak
# scaling, at 1, 2 and 4 ranks (as many as the host has), one GPU per rank; each job's
# ranks.parquet and node.parquet (and the ranks' output, ranks.log) under OUT/<strategy>_w<N>/.
#
# usage: benchmarks/distributed_campaign.sh OUT [MODEL] [PRECISION] [SEQ_LEN] [TARGET]
#   defaults: llama-3.2-1b bf16-mixed 1024 cuda (any GPU: each row carries the datasheet label
#   of the GPU its rank got; name h100 or h200 to refuse any other)
# Run from the repository root with the package importable. NVLink multicast stays off: the
# launcher sets these for every rank as well, and each rank refuses to start without them.
set -euo pipefail
out=${1:?usage: $0 OUT [MODEL] [PRECISION] [SEQ_LEN] [TARGET]}
model=${2:-llama-3.2-1b} precision=${3:-bf16-mixed} seq=${4:-1024} target=${5:-cuda}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
mkdir -p "$out"
{ nvidia-smi -L; nvidia-smi topo -m; nvidia-smi -q -d POWER,CLOCK,PERFORMANCE
  python3 -c 'import torch;print("torch",torch.__version__,"nccl",torch.cuda.nccl.version())'
} > "$out/env.txt" 2>&1
gpus=$(nvidia-smi -L | wc -l)
for strategy in ddp fsdp; do
  for n in 1 2 4; do
    [ "$n" -le "$gpus" ] || continue
    echo "[campaign $(date +%T)] $strategy, $n rank(s)"
    python3 -m flopmetrics.distributed.launch --world-size "$n" --strategy "$strategy" --scaling weak \
      --target "$target" --model "$model" --precision "$precision" --seq-len "$seq" --out "$out/${strategy}_w$n"
  done
done
