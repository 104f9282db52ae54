"""The conda env file names what pyproject.toml depends on, with the same version bounds (it is
checked here, not solved: CI cannot reach conda channels), and every rule that runs Python says
which environment it needs."""

from __future__ import annotations

import json
import re
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
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
    """The environment the pipeline's rules run in: the base dependencies and the pipeline
    extra."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"] + meta["optional-dependencies"]["pipeline"]
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


# what only the pipeline and the Zeus comparison need: the base install must run without them
EXTRAS_ONLY = ("snakemake", "seaborn", "matplotlib", "zeus")

BLOCKER = f"""
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_ONLY!r}:
            raise ModuleNotFoundError(f"{{name}}: not in the base install", name=name)
sys.meta_path.insert(0, _Absent())
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The built wheel in a fresh venv, without its extras: the venv reaches the base
    dependencies through a path file to this interpreter's site-packages (no network here), and
    a sitecustomize makes every extra's module unimportable, so that a command needing one fails."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    for name in ("src", "pyproject.toml", "README.md", "LICENSE"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, tree / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", tree], check=True
    )
    (wheel,) = (tmp / "dist").glob("flopmetrics-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "--no-deps", wheel], check=True)
    site_dir = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site_dir / "base_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    (site_dir / "sitecustomize.py").write_text(BLOCKER)
    empty = tmp / "empty"
    empty.mkdir()
    return venv / "bin" / "flopmetrics", empty, site_dir


def run_installed(installed, *args, check=True):
    command, empty, _ = installed
    out = subprocess.run([command, *args], capture_output=True, text=True, cwd=empty)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def test_the_wheel_runs_every_command_from_an_empty_folder_without_extras(installed, tmp_path):
    _, empty, site_dir = installed
    version = run_installed(installed, "--version").stdout
    assert version.strip() == f"flopmetrics {project()['version']}"
    where = run_installed(installed, "env", "--json")
    assert json.loads(where.stdout)["torch"]
    # estimate answers from the calibration packaged in the wheel, not from a results/ folder
    est = run_installed(
        installed,
        *("estimate", "--model", "llama-3.2-1b", "--tokens", "1e9", "--target", "h100"),
        *("--precision", "bf16", "--json"),
    )
    row = json.loads(est.stdout)
    assert row["status"] == "ok" and row["energy_j_lo"] < row["energy_j"] < row["energy_j_hi"]
    assert row["calibration"].startswith("packaged with flopmetrics")
    assert not (empty / "results").exists()
    runs = tmp_path / "runs.csv"
    runs.write_text("flops,energy_j,time_s,gpu,precision\n1e15,2000,4,h100,bf16\n")
    audit = json.loads(run_installed(installed, "audit", "--json", str(runs)).stdout)
    assert [v["verdict"] for v in audit["verdicts"]] == ["possible"]
    out = tmp_path / "m.json"
    measure = run_installed(
        installed,
        "measure",
        "--device",
        "cpu",
        "--idle-s",
        "0",
        "--output",
        str(out),
        "--",
        sys.executable,
        "-c",
        "print('child')",
    )
    assert measure.stdout == "child\n" and json.loads(out.read_text())[0]["exit_code"] == 0
    # the commands ran from the wheel, and the extras really were out of reach
    probe = [site_dir.parents[2] / "bin" / "python", "-c"]
    where_from = subprocess.run(
        [*probe, "import flopmetrics; print(flopmetrics.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=empty,
    ).stdout
    assert Path(where_from).is_relative_to(site_dir), where_from
    blocked = subprocess.run([*probe, "import snakemake"], capture_output=True, text=True)
    assert blocked.returncode != 0 and "not in the base install" in blocked.stderr


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
