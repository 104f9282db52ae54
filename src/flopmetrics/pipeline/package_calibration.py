"""Put the calibration the pipeline fitted on the committed references into the package
(``src/flopmetrics/data/calibration/``), with its provenance: the reference folders, a digest
of their rows (a data check fails when they change and the packaged table was not remade), the
code revision and the time. Run from the repository root after the default pipeline:

    snakemake -c all results/calibration/calibration.parquet
    python -m flopmetrics.pipeline.package_calibration
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import yaml

from ..contracts import packaged
from ..contracts.experiments import EXPERIMENTS, feeding
from ..contracts.paths import CALIBRATION
from ..jobs.output import atomic_path, write_text
from ..jobs.provenance import git_revision

CONFIG = "config/config.yaml"


def inputs(config: dict) -> tuple[list[str], list[Path]]:
    """The folders the default config fits its calibration from, and their row files (those
    below ``raw/<experiment>/`` of an experiment whose rows join no energy table, as serving's,
    left out: the calibration never reads them)."""
    others = {e.name for e in EXPERIMENTS} - {e.name for e in feeding("energy")}
    found = {
        d: [f for f in sorted(Path(d).glob("raw/**/*.parquet")) if not _below(f, d, others)]
        for d in [*config["reference"]["dirs"], *config["calibration"]["card_spread_dirs"]]
    }
    dirs = [d for d, files in found.items() if files]
    return dirs, [f for d in dirs for f in found[d]]


def _below(file: Path, folder: str, experiments: set[str]) -> bool:
    return file.relative_to(folder).parts[1] in experiments


def write(calibration: Path, config_path: Path, out: Path) -> dict:
    """Copy ``calibration`` into ``out`` and write its provenance, each file atomically."""
    dirs, files = inputs(yaml.safe_load(config_path.read_text()))
    info = {
        "fitted_from": dirs,
        "input_files": len(files),
        "inputs_sha256": packaged.digest(files),
        "config": config_path.as_posix(),
        "git_revision": git_revision()[0],
        "written_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "made_by": "python -m flopmetrics.pipeline.package_calibration",
    }
    with atomic_path(out / packaged.TABLE) as tmp:
        shutil.copyfile(calibration, tmp)
    write_text(json.dumps(info, indent=1) + "\n", out / packaged.PROVENANCE)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibration", type=Path, default=Path(CALIBRATION))
    ap.add_argument("--config", type=Path, default=Path(CONFIG))
    ap.add_argument("--out", type=Path, default=Path("src/flopmetrics") / packaged.FOLDER)
    args = ap.parse_args(argv)
    if not args.calibration.exists():
        print(f"{args.calibration} not found: run the default pipeline first", file=sys.stderr)
        return 2
    info = write(args.calibration, args.config, args.out)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
