#!/usr/bin/env bash
# Issue 16's measurements on one multi-GPU host, through the pipeline (rule
# profile_distributed): the interconnect as `nvidia-smi topo -m` shows it, then the jobs of
# config/node_reference.yaml that fit the host (world sizes up to its GPU count), strategies in
# the order given, each job's node, ranks and windows tables and its log; archived in OUT.
#
# usage: benchmarks/distributed_campaign.sh OUT [STRATEGY ...]     (default: ddp fsdp)
# Run from the repository root with the package, Snakemake and Zeus importable; in a copy
# without .git export FLOPMETRICS_GIT_REVISION=<sha> first. The target is the datasheet label of
# the host's GPUs (h100, or h200 where those came). NVLink multicast stays off: the launcher
# sets these for every rank as well, and each rank refuses to start without them.
set -uo pipefail
out=${1:?usage: $0 OUT [STRATEGY ...]}; shift
strategies=("${@:-ddp fsdp}"); strategies=(${strategies[*]})
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi -L | grep -q H200 && label=h200 || label=h100
config=$out/node_reference.yaml
sed "s/targets: \[h100\]/targets: [$label]/" config/node_reference.yaml > "$config"
{ nvidia-smi -L; nvidia-smi topo -m; nvidia-smi -q -d POWER,CLOCK,PERFORMANCE
  python3 -c 'import torch;print("torch",torch.__version__,"nccl",torch.cuda.nccl.version())'
} > "$out/env_$(date +%H%M%S).txt" 2>&1
gpus=$(nvidia-smi -L | wc -l)
files=()
for strategy in "${strategies[@]}"; do
  for n in 1 2 4; do
    [ "$n" -le "$gpus" ] && files+=("results/raw/distributed/$label/llama-3.2-1b/bf16-mixed/${strategy}_weak_w$n/b8_s1024.parquet")
  done
done
echo "[campaign $(date +%T)] $label x $gpus: ${files[*]}"
snakemake -c all --configfile "$config" --keep-going "${files[@]}" > "$out/sweep_$(date +%H%M%S).log" 2>&1
echo "[campaign $(date +%T)] sweep exit $?"
tar czf "$out/results.tgz" results logs 2>/dev/null
