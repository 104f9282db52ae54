#!/usr/bin/env bash
# The command and the API on a real GPU (what tests/test_cli.py runs on CPU): flopmetrics env, measure of a
# 3 s bf16 matmul loop, flopmetrics.measure of a Linear layer. Run from the repository root on a GPU host;
# writes $OUT/measure.parquet. Result: benchmarks/results/cli_gpu_check_h100_2026-11-27.txt
[ -d .whl ] && python3 -m pip install -q --no-index --find-links .whl jsonschema >/dev/null 2>&1  # an offline host
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src OUT=${OUT:-.}
nvidia-smi --query-gpu=uuid,name,driver_version,power.limit --format=csv
python3 -m flopmetrics env
python3 -m flopmetrics measure --idle-s 1 --output $OUT/measure.parquet -- python3 -c "import torch,time; a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16); t=time.time()
while time.time()-t<3: a@a
torch.cuda.synchronize()"
python3 - <<'PY'
import torch, flopmetrics, pandas as pd
model = torch.nn.Linear(4096, 4096, device="cuda", dtype=torch.bfloat16)
x = torch.randn(8192, 4096, device="cuda", dtype=torch.bfloat16)
r = flopmetrics.measure(lambda: model(x), device="cuda:0", seconds=1.0, repeats=3)
print(r.summary())
print("expected FLOPs", 2 * 8192 * 4096 * 4096, "counted", r.flops)
print(pd.read_parquet(__import__("os").environ["OUT"] + "/measure.parquet").T.head(18).to_string())
PY
