#!/usr/bin/env bash
# Issue 35, item 3 on a GPU host: `flopmetrics flops` reads the kernel choice on this GPU and
# predicts executed FLOPs of MLP configs no committed run has; the same configs are then
# captured under Nsight Compute, to judge the predictions against (benchmarks/unseen_flops.py).
#   benchmarks/flops_cli_check.sh OUT [CONFIG ...]   (default: 3,1000,77 2,2222,33 4,517,300)
# Writes OUT/cli/<precision>_<pass>_n<n>_d<d>_m<m>.json and OUT/ncu/<precision>.{csv.gz,json}.
set -uo pipefail
out=${1:?usage: flops_cli_check.sh OUT [CONFIG ...]}; shift
if [ $# -gt 0 ]; then configs=("$@"); else configs=(3,1000,77 2,2222,33 4,517,300); fi
mkdir -p "$out/cli" "$out/ncu" "$out/tmp"
for p in bf16 fp32; do
  for c in "${configs[@]}"; do
    IFS=, read -r n d m <<< "$c"
    for pass in forward backward; do
      python3 -m flopmetrics flops --mlp "$c" --precision "$p" --pass "$pass" --json \
        > "$out/cli/${p}_${pass}_n${n}_d${d}_m${m}.json" 2>> "$out/cli/log.txt"
      echo "[flops] $p $pass $c exit $?"
    done
  done
  MLP="${configs[*]}" GEMM="" LLM="" LIMIT=${LIMIT:-120} benchmarks/ncu_campaign.sh "$out/tmp" "$p"
  gzip -c "$out/tmp/$p.csv" > "$out/ncu/$p.csv.gz" && cp "$out/tmp/$p.json" "$out/ncu/$p.json"
done
rm -rf "$out/tmp"
