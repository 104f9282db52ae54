#!/usr/bin/env bash
# Issue 35 item 4 on a GPU host: executed FLOPs of a causal LM's train step per operation class.
# One ncu process per precision runs the step (as the pipeline's job does, eager), then each
# operation class's share of it replayed alone (flopmetrics.workloads.optape).
#   benchmarks/op_classes_campaign.sh OUT SHAPE [PRECISION ...]   (SHAPE: model:layers:batch:seq)
# Writes OUT/<precision>.{csv.gz,json,log}. Needs ncu 2025.3+ and access to the GPU's counters.
# Cost on an H200 (2026-12-03): ~0.33 s of ncu per launch (7 replay passes). Llama-3.2-1B at one
# layer, b8 s256, launches ~650 kernels per precision (the step ~300, of them ~200 AdamW
# multi_tensor_apply launches over the embedding; then its classes again): ~215 s plus start-up.
# Two layers ~870; the full 16-layer step several thousand. LIMIT (s, default 300) bounds each
# ncu process; LAUNCHES (default: what LIMIT allows at 0.4 s each after 40 s of start-up) caps the
# profiled launches, so that a capture cut short still writes the passes it finished.
set -uo pipefail
out=${1:?usage: op_classes_campaign.sh OUT SHAPE [PRECISION ...]}; shape=${2:?SHAPE}; shift 2
if [ $# -gt 0 ]; then precisions=("$@"); else precisions=(bf16 fp32); fi
mkdir -p "$out"
for p in "${precisions[@]}"; do
  start=$(date +%s)
  limit=${LIMIT:-300}; launches=${LAUNCHES:-$(( (limit - 40) * 10 / 4 ))}
  timeout "$limit" python3 - "$out/$p" "$p" "$shape" "$launches" <<'PY' > "$out/$p.log" 2>&1
import sys
from flopmetrics.ncu.metrics import capture_command, run
base, p, shape, launches = sys.argv[1:5]
argv = capture_command(p, base + ".json", llm_classes=[shape])
run(base + ".ncu-rep", argv, base + ".csv", launch_count=int(launches))
PY
  echo "[ncu classes $p] exit $? in $(( $(date +%s) - start )) s; $(wc -l < "$out/$p.csv" 2>/dev/null) CSV lines"
  [ -f "$out/$p.csv" ] && gzip -f "$out/$p.csv"
  rm -f "$out/$p.ncu-rep"
done
