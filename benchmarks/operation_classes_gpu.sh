#!/usr/bin/env bash
# One device call (< 10 min) for issues 35 (item 4) and 36 on a single GPU:
#   1. benchmarks/class_energy_probe.py: Llama-3.2-1B bf16 b8 s1024, the train step and each
#      operation class replayed from CUDA graphs of their own, metered round-robin (~150 s);
#   2. benchmarks/op_classes_campaign.sh: executed FLOPs per operation class under ncu, one layer,
#      b8 s256, bf16 and fp32 (launch-capped, ~190 s each).
#   benchmarks/operation_classes_gpu.sh OUT        (then tar OUT into $OUT on the device)
set -uo pipefail
out=${1:?usage: operation_classes_gpu.sh OUT}
mkdir -p "$out"
nvidia-smi --query-gpu=uuid,name,driver_version,power.limit,clocks.max.sm --format=csv > "$out/gpu.csv"
start=$(date +%s)
timeout "${PROBE_LIMIT:-170}" python3 benchmarks/class_energy_probe.py --shape "${PROBE_SHAPE:-llama-3.2-1b:0:8:1024}" \
  --precision bf16 --out "$out/probe_bf16.json" > "$out/probe_bf16.log" 2>&1
echo "[probe] exit $? in $(( $(date +%s) - start )) s"; grep -v Warning "$out/probe_bf16.log" | tail -8
LIMIT=${NCU_LIMIT:-190} benchmarks/op_classes_campaign.sh "$out/ncu" "${NCU_SHAPE:-llama-3.2-1b:1:8:256}" bf16 fp32
