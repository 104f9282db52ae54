#!/usr/bin/env bash
# Nsight Compute FLOP capture on a GPU host: per precision, one `ncu` process runs
# flopmetrics.ncu.capture over a set of MLP configs, GEMMs of known size and a Llama shape.
#   benchmarks/ncu_campaign.sh OUT_DIR [PRECISION ...]     (default: fp32 tf32 fp16 bf16)
# MLP, GEMM, LLM (space-separated lists; set to "" for none) choose what runs.
# Writes OUT_DIR/<precision>.{ncu-rep,csv,json,log}. Needs ncu 2025.3+ and permission to read
# the GPU's counters (root, or NVreg_RestrictProfilingToAdminUsers=0).
set -uo pipefail
out=${1:?usage: ncu_campaign.sh OUT_DIR [PRECISION ...]}; shift
if [ $# -gt 0 ]; then precisions=("$@"); else precisions=(fp32 tf32 fp16 bf16); fi
mkdir -p "$out"
: "${MLP=2,128,16 2,1024,128 2,2048,256 4,128,112 4,512,128 4,2048,48 8,256,16 8,1024,256}"
: "${GEMM=4096,4096,4096 1000,1000,1000 256,16,256}"
: "${LLM=llama-3.2-1b:2:8:256}"
for p in "${precisions[@]}"; do
  start=$(date +%s)
  timeout "${LIMIT:-600}" python3 - "$out/$p" "$p" <<PY > "$out/$p.log" 2>&1
import sys
from flopmetrics.ncu.metrics import capture_command, run
base, p = sys.argv[1], sys.argv[2]
shapes = lambda text: [s.split(",") for s in text.split()]
run(base + ".ncu-rep", capture_command(p, base + ".json", mlp=shapes("$MLP"), gemm=shapes("$GEMM"),
                                       llm="$LLM".split()), base + ".csv")
PY
  echo "[ncu $p] exit $? in $(( $(date +%s) - start )) s; $(wc -l < "$out/$p.csv" 2>/dev/null) CSV lines"
done
