"""Layers you can draw (README, "Layers"): the import graph, read from the source with imports
inside functions included, has no upward arrow and no cycle between files or between packages;
imports inside functions are left only for heavy optional dependencies, each saying why."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from conftest import REPO

SRC = REPO / "src" / "flopmetrics"

# bottom to top: a package imports packages of its own tier or below, never above
TIERS = (
    ("contracts",),  # schema and defaults, results layout, error types, vocabulary
    ("energy", "flops", "workloads"),  # meters, FLOP counts, what a job runs
    ("jobs", "ncu", "distributed", "analysis", "figures"),  # measuring, merging, plotting
    ("pipeline", "cli"),  # glue: config -> Snakemake jobs; the command
)
TIER = {package: i for i, tier in enumerate(TIERS) for package in tier}

# third-party modules a function may import late, with a comment that says why
HEAVY_OPTIONAL = {"torch", "transformers", "pynvml", "zeus", "seaborn", "matplotlib", "pyarrow"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imported(node: ast.AST, module: str, path: Path) -> list[str]:
    """The modules an import statement names: a ``from package import name`` names the
    submodule where ``name`` is one, else the package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    return subs or [base]


def imports(path: Path):
    """``(imported module, line, inside a function)`` for every import of the file at ``path``."""
    tree = ast.parse(path.read_text())
    module = module_name(path)

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in imported(child, module, path):
                    yield name, child.lineno, in_function
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            yield from walk(child, inner)

    yield from walk(tree, False)


def package_of(module: str) -> str | None:
    """The package of a flopmetrics module; None for the root's own files (``__init__``, the
    ``__main__`` entry point) and modules of other distributions."""
    parts = module.split(".")
    if parts[0] != "flopmetrics" or len(parts) < 2 or (SRC / f"{parts[1]}.py").exists():
        return None
    return parts[1]


def graph() -> dict[str, set[str]]:
    """flopmetrics module -> the flopmetrics modules it imports (the package root excluded:
    Python imports it before any submodule, and it imports nothing at module level)."""
    out = defaultdict(set)
    for module, path in MODULES.items():
        for name, _, _ in imports(path):
            while name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != "flopmetrics" and name != module:
                out[module].add(name)
    return out


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every node reached from ``start`` along one edge or more."""
    out, todo = set(), list(edges.get(start, ()))
    while todo:
        v = todo.pop()
        if v not in out:
            out.add(v)
            todo.extend(edges.get(v, ()))
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of nodes that reach one another (strongly connected, more than one node)."""
    reach = {v: reachable(edges, v) for v in edges}
    out, seen = [], set()
    for v in edges:
        group = sorted(u for u in reach[v] if v in reach.get(u, ()))
        if len(group) > 1 and v not in seen:
            out.append(group)
            seen.update(group)
    return out


def test_every_package_has_a_tier():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(TIER), "give each package a tier in TIERS (and the README's drawing)"


def test_no_import_runs_upward():
    upward = [
        f"{a} (tier {TIER[package_of(a)]}) imports {b} (tier {TIER[package_of(b)]})"
        for a, targets in graph().items()
        for b in targets
        if package_of(a) and package_of(b) and TIER[package_of(a)] < TIER[package_of(b)]
    ]
    assert not upward, "\n".join(upward)


def test_contracts_import_nothing_heavy():
    for path in (SRC / "contracts").glob("*.py"):
        for name, line, _ in imports(path):
            top = name.split(".")[0]
            assert top not in {
                "torch",
                "transformers",
                "seaborn",
                "matplotlib",
                "pandas",
                "numpy",
            }, f"{path.name}:{line} imports {name}"


def test_no_cycle_between_files():
    assert not cycles(graph())


def test_no_cycle_between_packages():
    packages = defaultdict(set)
    for a, targets in graph().items():
        for b in targets:
            if package_of(a) and package_of(b) and package_of(a) != package_of(b):
                packages[package_of(a)].add(package_of(b))
    assert not cycles(packages)


def late_imports():
    """``(file, line, module)`` of every import inside a function."""
    for path in MODULES.values():
        for name, line, in_function in imports(path):
            if in_function:
                yield path, line, name


def says_why(lines: list[str], line: int) -> bool:
    """A comment on the import's line, or on the nearest line above its block of imports."""
    i = line - 1
    while i > 0 and lines[i - 1].strip().startswith(("import ", "from ")):
        i -= 1  # the block's first import
    return "#" in lines[line - 1] or "#" in lines[i] or (i > 0 and "#" in lines[i - 1])


def test_imports_inside_functions_only_for_heavy_optional_dependencies():
    lines = {path: path.read_text().splitlines() for path in MODULES.values()}
    bad = []
    for path, line, name in late_imports():
        if path == SRC / "__init__.py":
            # flopmetrics.Monitor and .measure, resolved on first use (the module says why)
            continue
        where = f"{path.relative_to(REPO)}:{line} imports {name}"
        if name.split(".")[0] not in HEAVY_OPTIONAL:
            bad.append(f"{where}: import it at the top of the module")
            continue
        if not says_why(lines[path], line):
            bad.append(f"{where}: say why it is imported late (a comment on or above the line)")
    assert not bad, "\n".join(bad)


def test_config_validation_imports_no_plotting_library():
    """Validating the embedded default (Snakemake's parse time) loads no seaborn or pyplot."""
    code = (
        "import sys, yaml\n"
        "from flopmetrics.pipeline import config\n"
        "config.validate(yaml.safe_load(open('config/config.yaml')), config.load_schema())\n"
        "bad = [m for m in ('seaborn', 'matplotlib.pyplot') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(bool(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
