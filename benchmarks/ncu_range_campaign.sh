#!/usr/bin/env bash
# Issue 35 item 4 on the GPU machine: a whole causal-LM train step (default Llama-3.2-1B, all 16
# layers, batch 8, 256 tokens) and its operation classes under Nsight Compute, by
# benchmarks/ncu_range_classes.py. Writes $OUT/<name>.{csv,json,log}; judge anywhere with
# `ncu_range_classes.py judge JSON CSV [JSON CSV ...]`.
#   PARTS=tensor: app-range replay, one range per pass (the step and each class), the precision's
#                 tensor-core metric and the time (~35 s on an H200 in bf16);
#   PARTS=simt:   application replay per launch (range replays refuse the SASS metrics) of PASSES
#                 (default: the classes that run no tensor core), SIMT and tensor FLOPs; ~30 ms a
#                 launch and pass, 3 passes (bf16: ~2000 launches in 254 s).
# PRECISION (bf16), SHAPE, NAME, SIMT_LIMIT (s). ncu as root; --clock-control none leaves the
# card's clocks as they are.
set -u
site=$(mktemp -d)  # the carried wheels (.whlz: jsonschema and what the package imports)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whlz/*.whl
export PYTHONPATH=$site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=uuid,name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
ncu --version | tail -1
P=${PRECISION:-bf16}
S=${SHAPE:-llama-3.2-1b:0:8:256}
TENSOR=$(python3 benchmarks/ncu_range_classes.py metrics --precision "$([ "$P" = fp32 ] && echo tf32 || echo "$P")")
SASS=$(python3 -c "from flopmetrics.ncu.metrics import SIMT, simt_metric as m; print(','.join(m(o) for ops in SIMT.values() for o in ops))")
go() { # name limit_s replay metrics [capture options]
  local n=$1 lim=$2 mode=$3 met=$4 s; shift 4; s=$(date +%s)
  timeout -k 10 "$lim" ncu --replay-mode "$mode" --profile-from-start off --nvtx --clock-control none \
    --metrics "$met" --export "$OUT/$n" --force-overwrite python3 benchmarks/ncu_range_classes.py \
    capture --precision "$P" --shapes "$S" --manifest "$OUT/$n.json" "$@" > "$OUT/$n.log" 2>&1
  echo "$n rc=$? in $(( $(date +%s) - s )) s; $(grep -c '==PROF== Profiling' "$OUT/$n.log") profiled"
  tail -3 "$OUT/$n.log"
  [ -f "$OUT/$n.ncu-rep" ] && ncu --import "$OUT/$n.ncu-rep" --csv --page raw > "$OUT/$n.csv" && rm "$OUT/$n.ncu-rep"
  gzip -f "$OUT/$n.log"
}
parts=${PARTS:-tensor simt}
[ "$parts" != "${parts#*tensor}" ] && go "${P}_tensor" 200 app-range "$TENSOR"
read -ra passes <<< "${PASSES:-class:elementwise class:optimizer class:other}"
[ "$parts" != "${parts#*simt}" ] && go "${NAME:-${P}_simt}" "${SIMT_LIMIT:-520}" application \
  "$TENSOR,$SASS" --per-launch --passes "${passes[@]}"
ls -la "$OUT"
