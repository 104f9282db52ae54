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
    assert not [f for f in src.glob("*.py") if f.name not in ("__init__.py", "__main__.py")], (
        "modules belong in a stage package"
    )


def test_readme_layout_lists_every_rule_file_and_script():
    block = layout_block()
    for f in (REPO / "workflow/rules").glob("*.smk"):
        assert f.name in block, f.name
    scripts = sorted(f.name for f in (REPO / "workflow/scripts").glob("*.py"))
    line = block.split("workflow/scripts/", 1)[1].split("workflow/report/", 1)[0]
    assert sorted(set(re.findall(r"(\w+\.py)", line))) == scripts


def test_no_module_over_300_lines():
    """Measured on formatted code (ruff format, CI checks it): a larger module is split."""
    for f in (REPO / "src/flopmetrics").rglob("*.py"):
        assert len(f.read_text().splitlines()) <= 300, f


def test_benchmarks_import_only_what_exists():
    """The GPU probes cannot run in CI; their imports of the package are checked here."""
    import ast
    import importlib
    import importlib.util

    for f in (REPO / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flopmetrics"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(
                        f"{node.module}.{alias.name}"
                    ), (
                        f"{f.name}: {node.module}.{alias.name}"
                    )  # a name, or a submodule not imported yet


def schema_keys(schema: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every configurable key (list items as `key[]`, open mappings as
    `key.<name>`)."""
    out = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        out.append(path)
        if sub.get("type") == "object" and "properties" in sub:
            out += schema_keys(sub, path + ".")
        items = sub.get("items", {})
        if isinstance(items, dict) and "properties" in items:
            out += schema_keys(items, path + "[].")
    return out


def test_config_readme_documents_every_key_and_no_removed_one():
    from flopmetrics.pipeline import config as fm_config
    from flopmetrics.pipeline.config import RENAMED_KEYS

    schema = fm_config.load_schema()
    readme = (REPO / "config/README.md").read_text()
    documented = {
        k.removesuffix("[]") for k in re.findall(r"`([a-z0-9_]+(?:\.[a-z0-9_<>\[\]]+)+)`", readme)
    }
    for key in schema_keys(schema):
        top, *rest = key.split(".")
        if not rest:
            assert f"`{key}`" in readme, key
        elif (
            top == "figures" and len(rest) == 2
        ):  # figures.<name>.<style key>: the block's row names it
            row = next(
                line for line in readme.splitlines() if line.startswith(f"| `figures.{rest[0]}`")
            )
            assert rest[1] == "dpi" or f"`{rest[1]}`" in row, key
        elif key.startswith("co2e.workloads[]."):
            assert (
                key.split(".")[-1] in readme.split("`co2e.workloads[]`", 1)[1].split("\n", 1)[0]
            ), key
        elif key.startswith("slurm.cpu") or key.startswith("slurm.targets"):
            assert key.split(".")[-1] in readme, key
        else:
            assert key in documented, key
    # every documented dotted key exists (old names only in the rename table)
    table = readme.split("### Renamed keys and columns", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{old}`" in table and f"`{new}`" in table for old, new in RENAMED_KEYS.items())
    known = set(schema_keys(schema))
    outside = readme.replace(table, "")
    for key in re.findall(
        r"`((?:execution|mlp|energy|llm|matmul|reference|thesis|calibration|co2e|slurm|figures)"
        r"\.[a-z0-9_]+(?:\.[a-z0-9_]+)?)`",
        outside,
    ):
        assert key in known or key.startswith("slurm.targets"), (
            f"config/README.md names {key}, not in the schema"
        )


def test_no_empty_tracked_file():
    import subprocess

    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True
    ).stdout
    empty = [
        f for f in files.splitlines() if (REPO / f).is_file() and (REPO / f).stat().st_size == 0
    ]
    assert not empty, empty


def test_every_registered_figure_has_a_written_caption():
    from flopmetrics.figures.registry import FIGURES

    for fig in FIGURES:
        caption = REPO / "workflow/report" / f"{fig.name}.rst"
        assert len(caption.read_text().split()) >= 30, caption


# retired words -> the word that names the idea now (config/README.md, "Vocabulary"); the
# rename tables and the code that reads old files are the only places that may name them
RETIRED = {
    r"\battention_convention\b": "attention_flops",
    r"\bwith_convention\b": "with_attention",
    r"\barchitectures\s*:|\[.architectures.\]": "targets (slurm.targets)",
    r"calibration\W+workloads|\[.workloads.\]\s*,\s*s\[": "calibration.experiments",
    r"\bworkload\.kind\b|\bkind = \"(?:mlp|llm|matmul)\"": "the experiment (spec.experiment)",
    r"\[.workload.\] ==|\[\"workload\"\]\]": "column experiment",
    r"\bargs\.gpu\b|\"--gpu\"": "--target",
}
# the places that map an old name to its new one
EXEMPT = {"src/flopmetrics/pipeline/config.py", "src/flopmetrics/analysis/merge.py"}
EXEMPT_LINE = re.compile(r"action=Renamed")


def test_no_retired_word_in_code_or_config():
    files = [
        *(REPO / "src/flopmetrics").rglob("*.py"),
        *(REPO / "workflow").rglob("*.py"),
        *(REPO / "workflow").rglob("*.smk"),
        *(REPO / "config").glob("*.yaml"),
        *(REPO / "benchmarks").glob("*.py"),
        REPO / "src/flopmetrics/data/config.schema.yaml",
    ]
    found = []
    for path in files:
        rel = str(path.relative_to(REPO))
        if rel in EXEMPT:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for word, now in RETIRED.items():
                if re.search(word, line) and not EXEMPT_LINE.search(line):
                    found.append(f"{rel}:{number}: {line.strip()} (now: {now})")
    assert not found, "\n".join(found)
