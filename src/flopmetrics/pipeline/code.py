"""Which library files a rule's work depends on, so that editing them makes that rule stale.

Snakemake tracks a rule's own script, not the package the script imports. The cheap stages
(merge, calibration, CO2e, figures) therefore list, as inputs, the files of the modules they
call and of every flopmetrics module those import (found by reading the source, transitively,
lazy imports included), plus the package data files those modules read (``data/...``).
Profiling jobs do not: measurements are expensive and are not redone for a code edit;
:mod:`flopmetrics.pipeline.revisions` lists the rows measured with code that changed since.
"""

from __future__ import annotations

import ast
import os
import re
from functools import cache
from pathlib import Path

import flopmetrics

PACKAGE = "flopmetrics"
ROOT = Path(flopmetrics.__file__).resolve().parent
DATA_FILE = re.compile(r"""["']data/([\w.-]+)["']""")


def module_file(name: str) -> Path | None:
    """The source file of module ``flopmetrics.x.y`` (a package's ``__init__.py``), or None."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    rel = Path(*name.split(".")[1:])
    if not rel.parts:
        return ROOT / "__init__.py"
    for candidate in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((PACKAGE, *parts))


@cache
def _direct(path: Path) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    """(flopmetrics modules imported by the file at ``path``, data files it names)."""
    source = path.read_text()
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(
                f"{base}.{alias.name}" for alias in node.names
            )  # submodules, where they are
    modules = tuple(sorted(n for n in names if module_file(n)))
    data = tuple(
        sorted(
            ROOT / "data" / m for m in DATA_FILE.findall(source) if (ROOT / "data" / m).is_file()
        )
    )
    return modules, data


def sources(*modules: str, alone: tuple[str, ...] = ()) -> list[str]:
    """Files of ``modules`` and of every flopmetrics module they import, transitively, plus the
    package data they read; and the files of the ``alone`` modules without what they import (the
    figure registry imports every plot module, but a figure depends on its own): sorted
    absolute paths."""
    missing = [m for m in (*modules, *alone) if module_file(m) is None]
    if missing:
        raise ValueError(f"not a flopmetrics module: {missing}")
    seen: set[Path] = {module_file(m) for m in alone}
    todo = [module_file(m) for m in modules]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        imported, data = _direct(path)
        seen.update(data)
        todo.extend(module_file(m) for m in imported)
    return sorted(str(p) for p in seen)


def export_package(src) -> None:
    """Put the workflow's ``src`` first on ``PYTHONPATH`` for the jobs this Snakemake starts
    (their environment may hold the dependencies only: ``--sdm conda``)."""
    src = str(src)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *paths])
