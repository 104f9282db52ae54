"""The conda env file names what pyproject.toml depends on, with the same version bounds (it is
checked here, not solved: CI cannot reach conda channels), and every rule that runs Python says
which environment it needs."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import REPO

CONDA_NAMES = {
    "torch": "pytorch",
    "snakemake": "snakemake-minimal",
}  # where conda-forge names a package otherwise


def split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_the_conda_env_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs/flopmetrics.yaml").read_text())["dependencies"]
    conda = dict(
        split(d) for d in env if isinstance(d, str) and not d.startswith(("python=", "pip"))
    )
    wanted = {CONDA_NAMES.get(name, name): spec for name, spec in map(split, deps)}
    assert conda == wanted


def test_the_conda_env_names_no_path_that_breaks_where_snakemake_copies_it():
    """Snakemake creates the environment from a verbatim copy of the file under
    .snakemake/conda/: a relative path (``--editable ..``, ``./``, ``file:``) there names
    something else."""
    text = (REPO / "envs/flopmetrics.yaml").read_text()
    spec = yaml.safe_load(text)

    def strings(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node

    bad = [
        s
        for s in strings(spec)
        if re.search(r"(^|\s)(\.\.?/|\.\.$|\.$)|--editable|(^|\s)-e\s|file:", s)
    ]
    assert not bad, bad


def test_every_rule_that_runs_python_names_its_conda_env():
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        for rule in re.split(r"\n(?=rule |    rule )", text)[1:]:
            if "script:" in rule or "run:" in rule:
                assert (
                    'conda:\n        "../../envs/flopmetrics.yaml"' in rule or "conda:" in rule
                ), (smk.name, rule[:60])


def test_docs_name_the_flags_snakemake_has():
    for doc in [
        REPO / "README.md",
        REPO / "envs/flopmetrics.yaml",
        *sorted((REPO / "docs").glob("*.md")),
    ]:
        assert "--sw-env" not in doc.read_text(), doc
