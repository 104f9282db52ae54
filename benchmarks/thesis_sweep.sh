#!/usr/bin/env bash
# The thesis sweep (benchmarks/thesis_sweep.yaml) through the pipeline on this host's GPU, timed:
# the Snakemake run's wall time (an upper bound of the job's: it includes building the DAG; the
# job's own start and end are in snakemake.log); rows, traces and logs archived in OUT.
#
# usage: benchmarks/thesis_sweep.sh OUT        (from the repository root; Snakemake importable;
# in a copy without .git export FLOPMETRICS_GIT_REVISION=<sha> first)
set -uo pipefail
out=${1:?usage: $0 OUT}
mkdir -p "$out"
nvidia-smi -L | grep -q H200 && label=h200 || label=h100
config=$out/thesis_sweep.yaml
sed "s/targets: \[h100\]/targets: [$label]/" benchmarks/thesis_sweep.yaml > "$config"
start=$(date +%s.%N)
snakemake "results/raw/llm/$label/llama-3.2-1b/"{fp32,fp16,bf16}"/b8_s"{256,512,1024}".parquet" -c all --configfile "$config" \
  > "$out/snakemake.log" 2>&1
rc=$?
end=$(date +%s.%N)
echo "snakemake exit $rc, wall $(python3 -c "print(round($end - $start, 1))") s" | tee "$out/timing.txt"
tar czf "$out/results.tgz" results logs 2>/dev/null
