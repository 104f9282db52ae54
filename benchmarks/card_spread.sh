#!/usr/bin/env bash
# One card's contribution to the card-to-card spread (issue 31): the thesis sweep
# (benchmarks/thesis_sweep.sh) on this host's GPU, its per-configuration rows and logs kept under
# OUT/<GPU UUID>.tgz in the pipeline's layout (results/raw/, logs/; a tar, since the device
# tool brings back shallow folders only), with the sweep's timing, log and config beside it.
#
# usage: benchmarks/card_spread.sh OUT      (repository root of the GPU host; Snakemake importable)
set -uo pipefail
out=${1:?usage: $0 OUT}
# the sweep must measure on this card, not find an earlier card's rows
[ -e results/raw/llm ] && { echo "results/raw/llm exists: run from a clean checkout" >&2; exit 2; }
uuid=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | head -1)
work=$(mktemp -d)
bash benchmarks/thesis_sweep.sh "$work" || exit 1
mkdir -p "$out/$uuid"
tar czf "$out/$uuid.tgz" results/raw logs
cp "$work/timing.txt" "$work/snakemake.log" "$work/thesis_sweep.yaml" "$out/$uuid/"
nvidia-smi --query-gpu=uuid,name,driver_version,power.limit --format=csv > "$out/$uuid/gpu.csv"
