#!/usr/bin/env bash
# The H100 reference campaign, in calls that each fit one 10-minute device call.
#   first: environment, real-NVML test, counter-delay probe, then the sweep until its budget
#   next:  the sweep goes on where the last call stopped (an interrupted job is redone)
#   last:  what is still missing, merge, figures, then the meter-overhead benchmark
# A call that finds no results/ (a fresh machine) unpacks the previous call's archive from
# .devrun/prev.tgz, which the caller carries.
# Run on the GPU machine from the repository root with snakemake installed and
# PYTHONPATH=src; everything worth keeping goes to $OUT.
set -uo pipefail
stage=$1
OUT=${OUT:-.devrun/out}  # the device tool sets OUT; .devrun/ is git-ignored
mkdir -p "$OUT/evidence"
export PYTHONUNBUFFERED=1 FLOPMETRICS_EVIDENCE_DIR="$OUT/evidence"
# the device gets a copy of the tree without .git: the caller writes the revision here first
# (git rev-parse HEAD > .devrun/git_revision) so every row still names its code
[ -s .devrun/git_revision ] && export FLOPMETRICS_GIT_REVISION=$(cat .devrun/git_revision)
log() { printf '[campaign %s %(%H:%M:%S)T] %s\n' "$stage" -1 "$*"; }
REF=config/h100_reference.yaml
# the slowest and burstiest jobs first: they are where the meters are tested hardest
targets() {
  for p in fp32 tf32 fp16 bf16; do echo "results/raw/matmul/h100/$p/n8192.parquet"; done
  for p in bf16-mixed fp32 fp16 bf16; do for s in 256 384 512 768 1024; do
    echo "results/raw/llm/h100/llama-3.2-1b/$p/b8_s$s.parquet"; done; done
}

[ -d results ] || [ ! -s .devrun/prev.tgz ] || { log "fresh machine: unpacking the previous call"; tar xzf .devrun/prev.tgz; }
if [ "$stage" = first ]; then
  { nvidia-smi; nvidia-smi -q -d POWER,CLOCK,PERFORMANCE; python3 -c 'import torch,transformers,pynvml,snakemake;print(torch.__version__,transformers.__version__,snakemake.__version__)'; } > "$OUT/env.txt" 2>&1
  log "real NVML test"
  python3 -m pytest -q -p no:cacheprovider tests/test_gpu_real.py 2>&1 | tail -5
  log "counter delay probe"
  python3 benchmarks/counter_delay_probe.py > "$OUT/evidence/counter_delay_probe.json" 2> "$OUT/probe.err"
  python3 -c "import json;d=json.load(open('$OUT/evidence/counter_delay_probe.json'));print({k:d[k] for k in ('counter_delay_s','counter_period_s','instant_power_update_period_s','idle_w','busy_w')})"
fi
log "sweep"
if [ "$stage" = last ]; then
  timeout -s INT -k 20 ${BUDGET_S:-420} snakemake -c 16 --configfile $REF --keep-going > "$OUT/sweep_$stage.log" 2>&1
else
  timeout -s INT -k 20 ${BUDGET_S:-480} snakemake -c 16 --keep-going $(targets) --configfile $REF > "$OUT/sweep_$stage.log" 2>&1
fi
log "sweep exit $?"; grep -E "steps \(|Error" "$OUT/sweep_$stage.log" | tail -3
if [ "$stage" = last ] && [ "${SKIP_OVERHEAD:-0}" != 1 ]; then
  log "meter overhead benchmark"
  python3 benchmarks/meter_overhead.py --rounds 5 > "$OUT/evidence/meter_overhead.json" 2> "$OUT/meter_overhead.err"
  tail -3 "$OUT/evidence/meter_overhead.json"
fi
tar czf "$OUT/part_$stage.tgz" results logs .snakemake/metadata 2>/dev/null || tar czf "$OUT/part_$stage.tgz" results logs
