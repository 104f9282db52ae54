"""An experiment is a module, a registry entry and a schema block: a toy experiment written into
a copy of the tree runs end to end through Snakemake into the merged energy table, and the
copy's docs and layer tests still hold."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, SMALL_CONFIG, snakemake_command

pytestmark = pytest.mark.e2e

MODULE = '''"""A toy experiment: one product of a vector of ``length`` rows with a small matrix."""

from __future__ import annotations

import torch

from ..flops.counted import count_flops
from .base import Workload, finite_check


def build(device: str, precision: str, workload: dict, seed: int, previous=None):
    return ToyWorkload(device, precision, workload["length"], seed)


class ToyWorkload(Workload):
    passes = ("forward",)

    def __init__(self, device: str, precision: str, length: int, seed: int = 0):
        super().__init__(device, precision)
        gen = torch.Generator().manual_seed(seed)
        self.length = length
        dtype = self.precision.dtype
        self.x = torch.randn(length, 16, generator=gen).to(device=device, dtype=dtype)
        self.w = torch.randn(16, 16, generator=gen).to(device=device, dtype=dtype)

    def steps(self):
        return {"forward": lambda: self.x @ self.w}

    def counted(self):
        return {"forward": count_flops(self.steps()["forward"])}

    def describe(self):
        return {"length": self.length, "tokens": self.length}

    def health(self, name, output):
        return finite_check([output], [f"output of {name}"])
'''

ENTRY = """
TOY = Experiment(
    "toy",
    (TARGET, PRECISION, size("length", "lengths")),
    "{target}/{precision}/l{length}",
    "flopmetrics.workloads.toy:build",
    passes=("forward",),
)
EXPERIMENTS = (*EXPERIMENTS, TOY)
BY_NAME = {e.name: e for e in EXPERIMENTS}
"""

SCHEMA = """  toy:
    type: object
    additionalProperties: false
    default: {targets: []}
    properties:
      targets: *targets
      precisions: *precisions
      lengths: {type: array, minItems: 1, items: {type: integer, minimum: 1}, default: [64]}
      repeats: {type: integer, minimum: 1, default: 2}
      min_repeats: {type: integer, minimum: 1, default: 2}
      target_rse: {type: number, minimum: 0, default: 0.0}
      min_window_s: {type: number, exclusiveMinimum: 0, default: 0.01}
      warmup_iterations: {type: integer, minimum: 0, default: 1}
      seed: {type: integer, default: 0}
"""

DOCS = """
## `toy` — a toy experiment
| key | type | default | meaning |
|---|---|---|---|
| `toy.targets` | list of targets | `[]` | where to run |
| `toy.precisions` | list of precisions | `[fp32]` | number formats |
| `toy.lengths` | list of int | `[64]` | rows of the vector |
| `toy.repeats` | int | 2 | windows |
| `toy.min_repeats` | int | 2 | windows at least |
| `toy.target_rse` | number | 0 | stopping rule |
| `toy.min_window_s` | number | 0.01 | window length |
| `toy.warmup_iterations` | int | 1 | warm-up |
| `toy.seed` | int | 0 | inputs |
"""


def tracked_copy(root: Path) -> None:
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    )
    for rel in files.stdout.splitlines():
        # the test's own config alone (config/config.yaml names the reference data), as the
        # Workflow fixture runs
        skip = rel == "config/config.yaml" or rel.startswith(("resources/", "benchmarks/results/"))
        if (REPO / rel).is_file() and not skip:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, root / rel)


def add_toy(root: Path) -> None:
    src = root / "src/flopmetrics"
    (src / "workloads/toy.py").write_text(MODULE)
    registry = src / "contracts/experiments.py"
    registry.write_text(registry.read_text() + ENTRY)
    schema = src / "data/config.schema.yaml"
    text = schema.read_text()
    schema.write_text(
        text.replace("  figures:\n    type: object", SCHEMA + "  figures:\n    type: object", 1)
    )
    readme = root / "README.md"
    readme.write_text(
        readme.read_text().replace("matmul.py ·", "matmul.py · toy.py (a toy experiment) ·", 1)
    )
    (root / "config/README.md").write_text((root / "config/README.md").read_text() + DOCS)


def test_a_toy_experiment_is_a_module_an_entry_and_a_schema_block(tmp_path):
    root = tmp_path / "tree"
    tracked_copy(root)
    add_toy(root)
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    cfg = copy.deepcopy(SMALL_CONFIG)
    cfg["mlp"]["d"], cfg["mlp"]["m"] = [16], [4]
    cfg["figures"]["mlp_flops_vs_d"].update(n=None, m=None)
    cfg["toy"] = {"targets": ["cpu"], "precisions": ["fp32", "bf16"], "lengths": [64, 128]}
    (root / "toy.yaml").write_text(yaml.safe_dump(cfg))
    cmd = snakemake_command(root, root, root / "toy.yaml")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    energy = pd.read_parquet(root / "results/merged/energy.parquet")
    toy = energy[energy["experiment"] == "toy"]
    assert sorted(zip(toy["precision"], toy["length"], strict=True)) == [
        ("bf16", 64),
        ("bf16", 128),
        ("fp32", 64),
        ("fp32", 128),
    ]
    assert (toy["pass"] == "forward").all() and (toy["flops"] > 0).all()
    assert (root / "results/raw/toy/cpu/bf16/l128.parquet").exists()
    assert (root / "logs/toy/cpu/bf16/l128.log").exists()
    # the copy's docs and layers still hold: nothing else had to change
    tests = [str(root / "tests/test_docs.py"), str(root / "tests/test_layers.py")]
    which = "layout or config_readme or module_over or retired or upward or cycle or tier"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", which, *tests],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout and "deselected" in proc.stdout
