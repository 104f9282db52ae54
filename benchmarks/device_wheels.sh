#!/usr/bin/env bash
# Wheels for a GPU host that has PyTorch, numpy, pandas and scipy but no network: Snakemake (the
# pipeline) and Zeus with scikit-learn (the independent meter the energy path is checked against).
#   benchmarks/device_wheels.sh [DIR] [PYTHON_VERSION]      (default .whl, 3.12; .whl/ is git-ignored)
# DIR is git-ignored: a device call must carry it. On the GPU host, from the repository root:
#   python3 -m pip install -q --no-index --find-links .whl snakemake zeus scikit-learn
# pip takes what the host already has from the host and the rest from DIR.
set -euo pipefail
dir=${1:-.whl} py=${2:-3.12}
mkdir -p "$dir"
snakemake_version=$(python3 -c 'import snakemake; print(snakemake.__version__)')
# connection_pool >= 0.0.3 is published as a source archive only: build its (pure-Python) wheel here
python3 -m pip wheel -q --no-deps -w "$dir" "connection_pool>=0.0.3"
python3 -m pip download -q --only-binary=:all: --find-links "$dir" --python-version "$py" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$dir" \
  "snakemake==$snakemake_version" zeus==0.16.0 scikit-learn
# the host has these (PyTorch's image): carrying them would only cost transfer size; PuLP (16 MB)
# serves only Snakemake's ILP scheduler: run it there with --scheduler greedy
rm -f "$dir"/numpy-* "$dir"/pandas-* "$dir"/scipy-* "$dir"/tzdata-* "$dir"/pulp-*
du -sh "$dir"
