#!/usr/bin/env bash
# Issue 36 on a GPU host: benchmarks/class_energy_probe.py for several train-step configurations,
# one process each, in the order given, until a deadline.
#   benchmarks/class_energy_campaign.sh OUT DEADLINE_EPOCH_S SHAPE:PRECISION[:WINDOW_S:REPEATS] ...
# SHAPE is model:layers:batch:seq (layers 0 = all); WINDOW_S and REPEATS default to 1 and 3.
# A probe starts only while NEED_S (default 70) seconds remain before the deadline, and runs
# under a timeout that ends at it; PROBE_ARGS (e.g. "--shapley --guard-s 0.2") go to every probe. Writes OUT/<model>_<layers>_b<batch>_s<seq>_<precision>.{json,log}.
set -uo pipefail
out=${1:?usage: class_energy_campaign.sh OUT DEADLINE SHAPE:PRECISION[:WINDOW_S:REPEATS] ...}
deadline=${2:?DEADLINE}; shift 2
mkdir -p "$out"
for item in "$@"; do
  IFS=: read -r model layers batch seq precision window repeats <<< "$item"
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt "${NEED_S:-70}" ]; then echo "[class energy] $item skipped: ${left} s left"; continue; fi
  name="${model}_${layers}_b${batch}_s${seq}_${precision}"
  start=$(date +%s)
  timeout "$left" python3 benchmarks/class_energy_probe.py --shape "$model:$layers:$batch:$seq" \
    --precision "$precision" --window-s "${window:-1}" --repeats "${repeats:-3}" \
    --out "$out/$name.json" ${PROBE_ARGS:-} > "$out/$name.log" 2>&1
  echo "[class energy] $item exit $? in $(( $(date +%s) - start )) s"
  grep -v Warning "$out/$name.log" | tail -7
done
