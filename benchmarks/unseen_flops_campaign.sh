#!/usr/bin/env bash
# Issue 35 on a GPU host: the kernel choice of every planned MLP config (torch.profiler, no ncu),
# then Nsight Compute over the same configs, in chunks (a chunk cut short by LIMIT loses only
# itself).
#   benchmarks/unseen_flops_campaign.sh OUT [PRECISION ...]        (default: bf16 fp32)
# Writes OUT/configs.json, OUT/choice/<precision>.json.gz, OUT/ncu/<precision>_<chunk>.{csv.gz,json}
# and OUT/ncu/<precision>_<chunk>.log. CHUNKS (default 2) and LIMIT (s per chunk, default 240).
# Judge afterwards, anywhere: python benchmarks/unseen_flops.py judge --runs OUT/ncu \
#   --choice OUT/choice --configs OUT/configs.json
set -uo pipefail
out=${1:?usage: unseen_flops_campaign.sh OUT [PRECISION ...]}; shift
if [ $# -gt 0 ]; then precisions=("$@"); else precisions=(bf16 fp32); fi
chunks=${CHUNKS:-2}
mkdir -p "$out/choice" "$out/ncu" "$out/tmp"
[ -f "$out/configs.json" ] || python3 benchmarks/unseen_flops.py plan --out "$out/configs.json"
start=$(date +%s)
python3 benchmarks/kernel_choice.py --shapes "$out/configs.json" --out "$out/choice" \
  --precisions "${precisions[@]}" 2> "$out/choice/log.txt"
echo "[choice] exit $? in $(( $(date +%s) - start )) s"
for p in "${precisions[@]}"; do
  for ((i = 0; i < chunks; i++)); do
    mlp=$(python3 -c "import json,sys; c=json.load(open('$out/configs.json'))['shapes']; \
print(' '.join(f\"{s['n']},{s['d']},{s['m']}\" for s in c[$i::$chunks]))")
    MLP="$mlp" GEMM="" LLM="" LIMIT=${LIMIT:-240} benchmarks/ncu_campaign.sh "$out/tmp/${p}_$i" "$p"
    if [ -s "$out/tmp/${p}_$i/$p.csv" ] && [ -s "$out/tmp/${p}_$i/$p.json" ]; then
      gzip -c "$out/tmp/${p}_$i/$p.csv" > "$out/ncu/${p}_$i.csv.gz"
      cp "$out/tmp/${p}_$i/$p.json" "$out/ncu/${p}_$i.json"
    fi
    cp "$out/tmp/${p}_$i/$p.log" "$out/ncu/${p}_$i.log" 2>/dev/null
  done
done
rm -rf "$out/tmp"
