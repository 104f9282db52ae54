#!/usr/bin/env bash
# Issue 32: measure the configurations of config/repeat_host_h200.yaml again, one job each, in a
# given order, and archive the run, so that a later run measures them afresh (how far a step
# bound by the host's launching repeats from job to job).
#
# usage: benchmarks/host_repeat_campaign.sh OUT RUN [fwd|rev] [BUDGET_S] [FILE ...]
#   OUT       folder the run's archive and log go to (OUT/RUN.tgz, OUT/RUN.log)
#   RUN       the run's name
#   fwd|rev   the order the configurations are measured in (default fwd)
#   BUDGET_S  start no configuration after this many seconds (default 540)
#   FILE ...  only these configurations, e.g. qwen3-1.7b/bf16/b1_s320 (default: all eight)
# Run from the repository root with the package and Snakemake importable. Never change clocks or
# power limits: rows record them as they are.
set -uo pipefail
out=$1 run=$2 order=${3:-fwd} budget=${4:-540}
files=(smollm2-135m/bf16/b6_s320 smollm2-135m/bf16/b1_s320 gemma-3-270m/bf16/b1_s256
  starcoder2-3b/bf16/b1_s256 olmo-1b/bf16/b4_s512 pythia-160m/bf16/b1_s640
  qwen3-1.7b/bf16/b1_s320 llama-3.2-1b/bf16/b1_s256)
[ $# -gt 4 ] && files=("${@:5}")
if [ "$order" = rev ]; then
  for ((i = ${#files[@]} - 1; i >= 0; i--)); do ordered+=("${files[i]}"); done
else
  ordered=("${files[@]}")
fi
mkdir -p "$out"
start=$SECONDS
for f in "${ordered[@]}"; do
  left=$((budget - (SECONDS - start)))
  [ "$left" -lt 45 ] && { echo "[$run] budget spent before $f" >>"$out/$run.log"; break; }
  echo "[$run $(date -u +%H:%M:%S)] $f" >>"$out/$run.log"
  # the target before --configfile, which takes every word after it
  timeout -s INT -k 15 "$left" python3 -m snakemake -c all --scheduler greedy --rerun-incomplete \
    "results/raw/llm/h200/$f.parquet" --configfile config/repeat_host_h200.yaml >>"$out/$run.log" 2>&1
done
tar czf "$out/$run.tgz" results/raw/llm results/traces/llm logs/llm 2>>"$out/$run.log"
rm -rf results/raw/llm results/traces/llm logs/llm # the next run measures every one again
