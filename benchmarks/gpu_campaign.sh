#!/usr/bin/env bash
# A measuring campaign on any GPU host: record the environment, optionally probe the meters,
# run a sweep with the pipeline (resumable: rerun to go on where it stopped), optionally time the
# meters' overhead, and archive everything worth keeping.
#
# usage: benchmarks/gpu_campaign.sh [-c CONFIG] [-o OUT] [-b BUDGET_S] [-j CORES] [--probes] [--overhead] [FILE ...]
#   -c CONFIG    the sweep's config file                  (default config/h100_reference.yaml)
#   -o OUT       folder for env.txt, logs, evidence/ and results.tgz (default .devrun/out; .devrun/ is git-ignored)
#   -b BUDGET_S  stop the sweep after this many seconds (SIGINT: the running job is redone next time);
#                0 = no limit                             (default 0)
#   -j CORES     snakemake --cores                        (default: all)
#   --probes     first: the real-NVML test and the counter-delay probe (evidence/)
#   --overhead   last: the meter-overhead benchmark (evidence/)
#   FILE ...     output files to make first, e.g. results/raw/llm/h100/llama-3.2-1b/fp16/b8_s512.parquet
#                (default: everything the config asks for)
# Run from the repository root with the package and Snakemake importable. Rows name their code
# by `git rev-parse HEAD`; in a copy without .git, export FLOPMETRICS_GIT_REVISION=<sha> first.
# Never change clocks or power limits for a campaign: rows record them as they are.
set -uo pipefail
config=config/h100_reference.yaml out=.devrun/out budget=0 cores=all probes=0 overhead=0 files=()
while [ $# -gt 0 ]; do
  case $1 in
    -c) config=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -b) budget=$2; shift 2 ;;
    -j) cores=$2; shift 2 ;;
    --probes) probes=1; shift ;;
    --overhead) overhead=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
[ -f "$config" ] || { echo "config $config does not exist" >&2; exit 2; }
mkdir -p "$out/evidence"
export PYTHONUNBUFFERED=1 FLOPMETRICS_EVIDENCE_DIR="$out/evidence"
log() { printf '[campaign %(%H:%M:%S)T] %s\n' -1 "$*"; }

{ nvidia-smi; nvidia-smi topo -m; nvidia-smi -q -d POWER,CLOCK,PERFORMANCE
  python3 -c 'import torch,transformers,pynvml,snakemake;print("torch",torch.__version__,"transformers",transformers.__version__,"snakemake",snakemake.__version__)'
} > "$out/env.txt" 2>&1
log "environment recorded in $out/env.txt"
if [ "$probes" = 1 ]; then
  log "real NVML test"
  python3 -m pytest -q -p no:cacheprovider tests/test_gpu_real.py 2>&1 | tail -5
  log "counter delay probe"
  python3 benchmarks/counter_delay_probe.py > "$out/evidence/counter_delay_probe.json" 2> "$out/probe.err"
fi
log "sweep ($config${files:+, ${#files[@]} files first})"
limit=() ; [ "$budget" != 0 ] && limit=(timeout -s INT -k 20 "$budget")
"${limit[@]}" snakemake -c "$cores" --configfile "$config" --keep-going "${files[@]}" > "$out/sweep.log" 2>&1
log "sweep exit $?"; grep -E "steps \(|Error" "$out/sweep.log" | tail -3
if [ "$overhead" = 1 ]; then
  log "meter overhead benchmark"
  python3 benchmarks/meter_overhead.py --rounds 5 > "$out/evidence/meter_overhead.json" 2> "$out/meter_overhead.err"
fi
tar czf "$out/results.tgz" results logs 2>/dev/null
log "results and logs archived in $out/results.tgz"
