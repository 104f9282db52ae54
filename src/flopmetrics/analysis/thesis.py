"""Import the thesis's published Llama energy results and audit them with our gates.

Each JSONL record (one per GPU x precision x config) becomes up to two rows, forward and
backward, in our schema, with ``source = "thesis"``. Its efficiency was
``flops_sum / energy_mean``: FLOPs of one batch over the mean energy of one window; GPU time
is in microseconds. The GPU label (``h100``...) does not say which variant was used, so the
gates compare with the most lenient variant of that label: a flagged value is impossible on
every variant.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..energy import datasheet, gates
from ..energy.efficiency import add_efficiency


class ThesisImportError(ValueError):
    pass


def read_architecture(directory: str | Path) -> pd.DataFrame:
    directory = Path(directory)
    files = sorted(directory.glob("*_llama3.2_1b_all_configs_results.jsonl"))
    if not files:
        raise ThesisImportError(f"no thesis result files (*_llama3.2_1b_all_configs_results.jsonl) in {directory}")
    rows = []
    for path in files:
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ThesisImportError(f"{path}:{lineno}: not JSON: {err.msg}") from None
            for p in ("forward", "backward"):
                if f"{p}_flops_sum" not in rec:
                    continue  # forward-only records
                label = rec["gpu_config"]
                spec = datasheet.most_lenient(label, rec["precision"])
                time_s = rec[f"{p}_gpu_time_mean"] / 1e6
                rows.append({
                    "source": "thesis", "workload": "llm", "model": "llama-3.2-1b", "pass": p, "derived": False,
                    "status": "ok", "gpu_label": label, "gpu_key": spec.key, "precision": rec["precision"],
                    "batch_size": rec["batch_size"], "seq_len": rec["input_length"],
                    "config_name": rec["config_name"],
                    "flops": float(rec[f"{p}_flops_sum"]),
                    "energy_j_per_iter": rec[f"{p}_energy_mean"], "energy_j_per_iter_sem": rec[f"{p}_energy_sem"],
                    "time_per_iter_s": time_s, "time_per_iter_sem_s": rec[f"{p}_gpu_time_sem"] / 1e6,
                    "published_gflops_per_joule": rec.get(f"gflops_per_joule_{p}"),
                    "source_file": f"{path.name}:{lineno}",
                })
    df = add_efficiency(pd.DataFrame(rows))
    df["power_mean_w"] = df["energy_j_per_iter"] / df["time_per_iter_s"]
    return gates.apply(df)
