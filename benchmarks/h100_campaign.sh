#!/usr/bin/env bash
# The H100 reference campaign, in stages that each fit one 10-minute device call.
#   A: environment, real-NVML test, GPU smoke run, matmuls and the fp32 LLM jobs
#   B: the fp16 and bf16 LLM jobs
#   C: everything still missing (bf16-mixed, MLP), merge, figures, meter-overhead benchmark
# A stage that finds no results/ (a fresh machine) unpacks the previous stage's archive from
# .devrun/prev.tgz, which the caller carries.
# Run on the GPU machine from the repository root with snakemake installed and
# PYTHONPATH=src; everything worth keeping goes to $OUT.
set -uo pipefail
stage=$1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FLOPMETRICS_EVIDENCE_DIR="$OUT/evidence"
# the device gets a copy of the tree without .git: the caller writes the revision here first
# (git rev-parse HEAD > .devrun/git_revision) so every row still names its code
[ -s .devrun/git_revision ] && export FLOPMETRICS_GIT_REVISION=$(cat .devrun/git_revision)
log() { printf '[campaign %s %(%H:%M:%S)T] %s\n' "$stage" -1 "$*"; }
REF=config/h100_reference.yaml
llm() { for p in "$@"; do for s in 256 512 1024; do echo "results/raw/llm/h100/llama-3.2-1b/$p/b8_s$s.parquet"; done; done; }
mm() { for p in fp32 tf32 fp16 bf16; do echo "results/raw/matmul/h100/$p/n8192.parquet"; done; }

if [ "$stage" = A ]; then
  { nvidia-smi; nvidia-smi -q -d POWER,CLOCK,PERFORMANCE; python3 -c 'import torch,transformers,pynvml,snakemake;print(torch.__version__,transformers.__version__,snakemake.__version__)'; } > "$OUT/env.txt" 2>&1
  log "real NVML test"
  python3 -m pytest -q -p no:cacheprovider tests/test_gpu_real.py 2>&1 | tail -5
  log "smoke run (skipped when SKIP_SMOKE=1)"
  [ "${SKIP_SMOKE:-0}" = 1 ] || timeout -s INT 150 snakemake -c 16 --configfile "$PWD/benchmarks/smoke_gpu.yaml" -d /tmp/smoke -s Snakefile > "$OUT/smoke.log" 2>&1
  rc=$?; tail -5 "$OUT/smoke.log" 2>/dev/null
  [ $rc = 0 ] || { log "smoke failed ($rc)"; tar czf "$OUT/smoke.tgz" -C /tmp/smoke logs results 2>/dev/null; exit 1; }
  log "sweep part A"
  timeout -s INT -k 20 ${BUDGET_S:-330} snakemake -c 16 --configfile $REF --keep-going $(mm) $(llm fp32) > "$OUT/sweepA.log" 2>&1
  log "part A exit $?"; grep -E "steps \(|Error" "$OUT/sweepA.log" | tail -3
else
  [ -d results ] || { log "fresh machine: unpacking the previous stage"; tar xzf .devrun/prev.tgz; }
  if [ "$stage" = B ]; then
    log "sweep part B"
    timeout -s INT -k 20 ${BUDGET_S:-480} snakemake -c 16 --configfile $REF --keep-going $(llm fp16 bf16) > "$OUT/sweepB.log" 2>&1
  else
    log "sweep part C (all that is missing, merge, figures)"
    timeout -s INT -k 20 ${BUDGET_S:-420} snakemake -c 16 --configfile $REF --keep-going > "$OUT/sweepC.log" 2>&1
    log "meter overhead benchmark"
    python3 benchmarks/meter_overhead.py --rounds 5 > "$OUT/meter_overhead.json" 2> "$OUT/meter_overhead.err"
  fi
  log "part $stage exit $?"; grep -E "steps \(|Error" "$OUT"/sweep$stage.log | tail -3
fi
tar czf "$OUT/part$stage.tgz" results logs .snakemake/metadata 2>/dev/null || tar czf "$OUT/part$stage.tgz" results logs
