"""Find every file of a thesis results tree, read its records, and account for each file.

Files are found in ``directory`` and all folders below it. Each gets a log entry: what it is,
records read, imported, duplicates (a per-config file repeats a line of its all-configs file:
counted once) and rejected, each rejection with ``file:line: reason``. Files that are not records
(the thesis's derived CSV tables, anything else) are listed as such, never passed over in silence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...energy import gates
from ...energy.efficiency import add_efficiency
from . import physics, records

# all-configs files first: a per-config record is then a duplicate of one already read
ORDER = ("all_configs", "per_config", "baseline")


class ThesisImportError(ValueError):
    pass


@dataclass
class FileReport:
    path: str
    kind: str
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.kind in ORDER:
            return (
                f"{self.path}: {self.kind} records: {self.read} read, {self.imported} imported, "
                f"{self.duplicates} duplicates, {len(self.rejected)} rejected"
            )
        return f"{self.path}: {self.kind}"


@dataclass
class ImportLog:
    files: list[FileReport] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [r.line() for r in self.files]
        out += [reason for r in self.files for reason in r.rejected]

        def total(attribute: str) -> int:
            return sum(getattr(r, attribute) for r in self.files)

        out.append(
            f"total: {len(self.files)} files, {total('read')} records read, {total('imported')} "
            "imported, "
            f"{total('duplicates')} duplicates, {sum(len(r.rejected) for r in self.files)} rejected"
        )
        return out


def classify(path: Path) -> tuple[str, dict]:
    for kind, pattern in records.FILE_NAMES.items():
        m = pattern.match(path.name)
        if m:
            return kind, m.groupdict()
    if path.suffix == ".csv":
        return "derived table (the thesis's own summary; not records, not imported)", {}
    return "not a thesis result file (not imported)", {}


def _records(path: Path, report: FileReport):
    """(line number, record) of each non-blank line; a bad line is a rejection naming it as the
    log names the file (``report.path``)."""
    text = path.read_text()
    if not text.strip():
        report.rejected.append(f"{report.path}:1: empty file, no records")
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        report.read += 1
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            report.rejected.append(
                f"{report.path}:{lineno}: not JSON: {err.msg} (column {err.colno})"
            )


def read_architecture(
    directory: str | Path, table: dict | None = None
) -> tuple[pd.DataFrame, ImportLog]:
    """Every record under ``directory`` as judged rows, and the import log."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ThesisImportError(f"thesis.architecture_dir: {directory} is not a directory")
    found = sorted(p for p in directory.rglob("*") if p.is_file())
    kinds = {p: classify(p) for p in found}
    log, rows, seen = ImportLog(), [], {}
    for path in sorted(
        found, key=lambda p: (ORDER.index(kinds[p][0]) if kinds[p][0] in ORDER else len(ORDER), p)
    ):
        kind, parts = kinds[path]
        rel = str(path.relative_to(directory.parent))
        report = FileReport(rel, kind)
        log.files.append(report)
        if kind in ORDER:
            rows += _import(path, kind, parts, report, seen)
    if not rows:
        raise ThesisImportError(
            f"no thesis records imported from {directory}:\n" + "\n".join(log.lines())
        )
    return judged(pd.DataFrame(rows), table), log


def read_file(path: str | Path) -> tuple[pd.DataFrame, FileReport]:
    """One thesis result file's records as judged rows (empty if none), and its report."""
    path = Path(path)
    kind, parts = classify(path)
    report = FileReport(str(path), kind)
    if kind not in ORDER:
        raise ThesisImportError(
            f"{path}: {kind}; a thesis record file is named like "
            "<gpu>_<precision>_llama3.2_1b_{all_configs_results,<config>_result,energy_results}.jsonl"
        )
    rows = _import(path, kind, parts, report, {})
    return (judged(pd.DataFrame(rows)) if rows else pd.DataFrame()), report


def _import(path: Path, kind: str, parts: dict, report: FileReport, seen: dict) -> list[dict]:
    """The rows of one file's records; rejected lines, duplicates and conflicts (with records
    already ``seen``, across files) go to ``report``."""
    rows = []
    for lineno, rec in _records(path, report):
        where = f"{report.path}:{lineno}"
        try:
            records.check(rec, kind, parts["gpu"], parts["precision"])
        except records.RecordError as err:
            report.rejected.append(f"{where}: {err}")
            continue
        key = (kind == "baseline", parts["gpu"], parts["precision"], rec.get("config_name", where))
        if key in seen:
            first, first_rec = seen[key]
            if first_rec == rec:
                report.duplicates += 1
            else:
                differ = sorted(
                    k for k in set(rec) | set(first_rec) if rec.get(k) != first_rec.get(k)
                )
                report.rejected.append(
                    f"{where}: conflicts with {first} in {', '.join(differ)}; {first} is kept"
                )
            continue
        seen[key] = (where, rec)
        rows += records.rows(rec, kind, parts["gpu"], parts["precision"], where)
        report.imported += 1
    return rows


def judged(df: pd.DataFrame, table: dict | None = None) -> pd.DataFrame:
    """Efficiency columns, per-variant verdicts (:mod:`.physics`) and the gates."""
    df = add_efficiency(df)
    verdicts = [
        physics.judge(
            r["gpu_name"],
            r["precision"],
            r["flops_per_j"],
            r["flops_per_s"],
            r["power_mean_w"],
            table,
        )
        for r in df.to_dict("records")
    ]
    df = pd.concat([df.reset_index(drop=True), pd.DataFrame(verdicts)], axis=1)
    return gates.apply(df, limits=physics.limits_of)
