"""What `flopmetrics estimate` answers for every causal-LM architecture the installed
transformers knows, each at its configuration class's defaults (random weights, nothing
downloaded): an estimate, a refusal with the datasheet's lower bound (exit status 3), a
one-line error (exit status 2), or a traceback (a bug: an error the command did not word).

    python benchmarks/architecture_sweep.py \\
        --out benchmarks/results/architecture_sweep_2026-12-05.tsv

One step of each: bf16 train step on an H200, batch 4 x 512 tokens. A default configuration is
often a large model (7B and more): its FLOPs and kernels are recorded on the meta device, so
that costs seconds, not memory; a state-space model's sequential scan takes about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pandas as pd
from transformers import AutoConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from flopmetrics.cli import main

STEP = ["--tokens", "2048", "--target", "h200", "--precision", "bf16", "--pass", "train_step"]
STEP += ["--batch-size", "4", "--seq-len", "512", "--json"]
OUTCOMES = {0: "estimate", 2: "error", 3: "refused"}


def _timeout(*_):
    raise TimeoutError("took longer than the sweep's limit")


def config_file(model_type: str, folder: Path) -> Path | None:
    """The architecture's default configuration as a config.json, or None where transformers
    cannot make one."""
    try:
        fields = AutoConfig.for_model(model_type).to_dict()
    except Exception:  # a configuration class whose defaults fail its own checks
        return None
    path = folder / f"{model_type}.json"
    path.write_text(json.dumps(fields, default=str))
    return path


def answer(path: Path, limit_s: int) -> tuple[str, str]:
    """(outcome, what it said) of one estimate, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    signal.alarm(limit_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["estimate", "--model", str(path), *STEP])
    except Exception as e:  # noqa: BLE001 - what the command let through is the finding
        where = traceback.extract_tb(e.__traceback__)[-1]
        return "traceback", f"{type(e).__name__}: {e} ({Path(where.filename).name}:{where.lineno})"
    finally:
        signal.alarm(0)
    if rc != 0 and rc != 3:
        return OUTCOMES.get(rc, f"exit {rc}"), err.getvalue().strip()
    row = json.loads(out.getvalue())
    # a refusal's own words: the step-time model's, after the calibration's
    said = row["basis"] if rc == 0 else row["status"].split("step-time model: ")[-1]
    return OUTCOMES[rc], said


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--types", nargs="*", help="model types (default: every causal LM's)")
    ap.add_argument("--limit-s", type=int, default=300, help="seconds per architecture")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGALRM, _timeout)
    rows = []
    types = args.types or sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    with tempfile.TemporaryDirectory() as tmp:
        for i, model_type in enumerate(types, 1):
            start = time.perf_counter()
            path = config_file(model_type, Path(tmp))
            outcome, said = ("no config", "") if path is None else answer(path, args.limit_s)
            seconds = time.perf_counter() - start
            said = " ".join(said.replace(tmp, "<tmp>").split())[:400]
            rows.append(
                {"model_type": model_type, "outcome": outcome, "s": round(seconds, 1), "said": said}
            )
            print(f"[{i}/{len(types)}] {model_type}: {outcome} ({seconds:.1f} s)", file=sys.stderr)
    table = pd.DataFrame(rows)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    table.to_csv(tmp_out, sep="\t", index=False)
    tmp_out.replace(args.out)
    print(table["outcome"].value_counts().to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main_())
