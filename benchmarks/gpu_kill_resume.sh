#!/usr/bin/env bash
# A kill -9 in the middle of a measuring window on the GPU, then a resume (issue 30): four MLP
# configurations through the pipeline; once the first is written and the second has measured
# for a few seconds, Snakemake, the job's client and the measuring worker are killed with
# SIGKILL. The resume must measure only what is missing and leave the first file as it was.
#
# usage: benchmarks/gpu_kill_resume.sh OUT     (repository root; Snakemake importable; in a
# copy without .git export FLOPMETRICS_GIT_REVISION=<sha> first)
set -uo pipefail
out=${1:?usage: $0 OUT}
mkdir -p "$out"
nvidia-smi -L | grep -q H200 && label=h200 || label=h100
work=$(mktemp -d)
cat > "$work/config.yaml" <<YAML
mlp: {targets: [$label], precisions: [bf16], n: [4], d: [4096], m: [1024, 2048, 4096, 8192],
      repeats: 3, min_repeats: 3, min_window_s: 1.0, profiler_flops: false}
llm: {targets: []}
matmul: {targets: []}
reference: {dirs: []}
figures: {mlp_flops_vs_d: {n: null, m: null}, power_trace: {trace: null}}
YAML
rel="results/raw/mlp/$label/bf16"  # Snakemake's targets are relative to its working directory
raw="$work/$rel"
targets=("$rel/n4_d4096_m"{1024,2048,4096,8192}".parquet")
files=("${targets[@]/#/$work/}")
snake=(snakemake -s "$PWD/Snakefile" -d "$work" --configfile "$work/config.yaml" -c 1)
setsid "${snake[@]}" "${targets[@]}" > "$out/first.log" 2>&1 &
leader=$!
for _ in $(seq 1 600); do [ -e "${files[0]}" ] && break; sleep 0.1; done
sleep 4  # the second configuration is in its windows
grep -h "window\|configuration" "$work"/logs/mlp/"$label"/bf16/*.log | tail -3 > "$out/at_kill.txt"
kill -9 -- -"$leader"; pkill -9 -f flopmetrics.jobs.worker
sleep 1
sha_before=$(sha256sum "${files[0]}" | cut -c1-16)
ls -l "$raw" > "$out/after_kill.txt"
"${snake[@]}" --unlock > /dev/null 2>&1
"${snake[@]}" "${targets[@]}" --rerun-incomplete > "$out/resume.log" 2>&1
echo "resume exit $?" >> "$out/resume.log"
sha_after=$(sha256sum "${files[0]}" | cut -c1-16)
{
  echo "card: $(nvidia-smi --query-gpu=uuid,name,driver_version --format=csv,noheader)"
  echo "first file before/after the resume: $sha_before / $sha_after"
  echo "files after the kill: $(ls "$raw" | tr '\n' ' ')"
  echo "jobs the resume ran:"; grep -A8 "^Job stats" "$out/resume.log"
  echo "wildcards of the resumed jobs:"; grep "wildcards:" "$out/resume.log"
} | tee "$out/summary.txt"
tar czf "$out/kill_resume.tgz" -C "$work" results logs 2>/dev/null
