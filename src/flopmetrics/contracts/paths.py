"""Where results go: the merged tables and what is made from them, written once; each
experiment's per-configuration files come from its registry entry
(:mod:`flopmetrics.contracts.experiments`). :func:`pattern` reads wildcard values back from a
path."""

from __future__ import annotations

import re

from .experiments import wildcards

# the wildcards' patterns, shared with the rules (workflow/rules/common.smk)
WILDCARDS = wildcards()

MERGED_MLP = "results/merged/mlp.parquet"
MERGED_NCU = "results/merged/ncu.parquet"
NCU_GAP = "results/ncu/gap.parquet"
MERGED_ENERGY = "results/merged/energy.parquet"
MERGED_INFERENCE = "results/merged/inference.parquet"
MERGED_RANKS = "results/merged/ranks.parquet"
MERGED_CLASSES = "results/merged/classes.parquet"
CLASS_ENERGY = "results/classes/class_energy.parquet"
CLASS_ENERGY_TABLE = "results/classes/class_energy.csv"
CLASS_ENERGY_VALIDATION = "results/classes/validation.csv"
CLASS_ENERGY_HTML = "results/classes/class_energy.html"
COVERAGE_TABLE = "results/merged/coverage.csv"
COVERAGE_HTML = "results/merged/coverage.html"
SCALING = "results/distributed/scaling.parquet"
SCALING_TABLE = "results/distributed/scaling.csv"
SCALING_HTML = "results/distributed/scaling.html"
MERGED_THESIS = "results/merged/thesis.parquet"
THESIS_READINGS = "results/thesis/baseline_readings.parquet"
THESIS_AUDIT = "results/thesis/audit.parquet"
THESIS_AUDIT_TABLE = "results/thesis/audit.md"
THESIS_AUDIT_REPORT = "results/thesis/audit.html"
CALIBRATION = "results/calibration/calibration.parquet"
CALIBRATION_TABLE = "results/calibration/calibration.csv"
CALIBRATION_HTML = "results/calibration/calibration.html"
SERVING_CALIBRATION = "results/calibration/serving.parquet"
SERVING_CALIBRATION_TABLE = "results/calibration/serving.csv"
NCU_CLASSES = "results/ncu/classes.parquet"
NCU_CLASSES_TABLE = "results/ncu/classes.csv"
STEPTIME_CALIBRATION = "results/calibration/steptime.parquet"
STEPTIME_CALIBRATION_TABLE = "results/calibration/steptime.csv"
# each held-out step the step-time model was judged on: measured, predicted, missed
STEPTIME_HELDOUT_STEPS = "results/calibration/steptime_heldout.csv"
CO2E_TABLE = "results/co2e/co2e.csv"
CO2E_HTML = "results/co2e/co2e.html"
THESIS_AUDIT_CSV = "results/thesis/audit.csv"
PREDICTIONS = "results/calibration/predictions.parquet"
CARD_SPREAD = "results/calibration/card_spread.parquet"
CARD_SPREAD_TABLE = "results/calibration/card_spread.csv"
CARD_SPREAD_HTML = "results/calibration/card_spread.html"
CO2E = "results/co2e/co2e.parquet"


def pattern(template: str) -> re.Pattern:
    """A regular expression that reads a template's wildcard values back from a path."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        name = m.group(1)
        out += re.escape(template[pos : m.start()]) + f"(?P<{name}>{WILDCARDS[name]})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + "$")
