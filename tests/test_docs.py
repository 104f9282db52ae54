"""Docs that stay true: README's layout names every module, rule file and script that exists,
and nothing that does not."""

from __future__ import annotations

import re

from conftest import REPO


def layout_block() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("<!-- layout -->", 1)[1].split("```text", 1)[1].split("```", 1)[0]


def package_lines(block: str) -> dict[str, str]:
    """Package folder (e.g. 'energy') -> the text of its lines in the layout block."""
    out, current = {}, None
    for line in block.splitlines():
        m = re.match(r"^  (\w+)/\s", line)
        if m:
            current = m.group(1)
            out[current] = line
        elif current and line.startswith(" " * 10) and not line.strip().endswith("/"):
            out[current] += " " + line
        else:
            current = None
    return out


def test_readme_layout_lists_every_module_and_only_those():
    block = layout_block()
    lines = package_lines(block)
    src = REPO / "src/flopmetrics"
    packages = sorted(p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert sorted(k for k in lines if k != "data") == packages
    for pkg in packages:
        modules = sorted(f.name for f in (src / pkg).glob("*.py") if f.name != "__init__.py")
        named = sorted(set(re.findall(r"(\w+\.py)", lines[pkg])))
        assert named == modules, pkg
    assert not [f for f in src.glob("*.py") if f.name != "__init__.py"], "modules belong in a stage package"


def test_readme_layout_lists_every_rule_file_and_script():
    block = layout_block()
    for f in (REPO / "workflow/rules").glob("*.smk"):
        assert f.name in block, f.name
    scripts = sorted(f.name for f in (REPO / "workflow/scripts").glob("*.py"))
    line = block.split("workflow/scripts/", 1)[1].split("workflow/schemas/", 1)[0]
    assert sorted(set(re.findall(r"(\w+\.py)", line))) == scripts


def test_no_module_over_300_lines():
    for f in (REPO / "src/flopmetrics").rglob("*.py"):
        assert len(f.read_text().splitlines()) <= 300, f


def test_benchmarks_import_only_what_exists():
    """The GPU probes cannot run in CI; their imports of the package are checked here."""
    import ast
    import importlib

    for f in (REPO / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flopmetrics"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{f.name}: {node.module}.{alias.name}"
