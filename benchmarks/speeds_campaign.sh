#!/usr/bin/env bash
# Issue 32: measure what the step-time model holds or fits apart and the package has not yet
# measured: the memory-bound kernels alone (config/calibration_memory_h200.yaml: the speeds of
# strided elementwise kernels and cat) and the reference model with attention dropout
# (config/calibration_dropout_h200.yaml: the rate of attention given dropout); then the GPU tests
# that each memory kernel runs the kernel family it names. Archives results/, logs/ and the tests'
# output into OUT.
#
# usage: benchmarks/speeds_campaign.sh OUT [memory|dropout|tests ...] [BUDGET_S]
#   parts default to all three, in that order; start nothing after BUDGET_S seconds (default 540)
# Run from the repository root with the package and Snakemake importable. Never change clocks or
# power limits: rows record them as they are.
set -uo pipefail
out=$1
shift
budget=540
parts=()
for a in "$@"; do
  if [[ $a =~ ^[0-9]+$ ]]; then budget=$a; else parts+=("$a"); fi
done
[ ${#parts[@]} -eq 0 ] && parts=(memory dropout tests)
mkdir -p "$out"
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }
for part in "${parts[@]}"; do
  [ "$(left)" -lt 45 ] && { echo "budget spent before $part" >>"$out/campaign.log"; break; }
  echo "[$(date -u +%H:%M:%S)] $part" >>"$out/campaign.log"
  case $part in
  memory) # the targets before --configfile, which takes every word after it
    timeout -s INT -k 15 "$(left)" python3 -m snakemake -c all --scheduler greedy \
      --rerun-incomplete results/raw/memory/h200/{bf16,bf16-mixed}/{vectorized,strided,cat}_mib{256,1024}.parquet \
      --configfile config/calibration_memory_h200.yaml >>"$out/campaign.log" 2>&1 ;;
  dropout)
    timeout -s INT -k 15 "$(left)" python3 -m snakemake -c all --scheduler greedy \
      --rerun-incomplete results/raw/llm/h200/llama-3.2-1b-dropout/{bf16,bf16-mixed}/{b4_s2048,b2_s4096,b1_s8192}.parquet \
      --configfile config/calibration_dropout_h200.yaml >>"$out/campaign.log" 2>&1 ;;
  tests)
    timeout -s INT -k 15 "$(left)" python3 -m pytest -q tests/test_gpu_real.py -k memory \
      >>"$out/campaign.log" 2>&1 ;;
  *) echo "unknown part $part (memory, dropout, tests)" >&2; exit 2 ;;
  esac
done
tar czf "$out/results.tgz" results/raw results/traces logs 2>>"$out/campaign.log"
