"""The `flopmetrics` command on CPU: numbers, not exit codes. Run in-process (its own ``main``,
argv in, exit code and both streams out: no interpreter start per call) except where the process
is what is tested (``measure`` passes a child's output through; the README's first screen and
the installed wheel run as a user runs them). `estimate` against the pipeline's CO2e table:
tests/test_default_run.py."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import flopmetrics
from flopmetrics.contracts.errors import MeterError
from flopmetrics.energy import datasheet
from flopmetrics.energy.cpu import RaplMeter

OPTIMIZED = (
    Path(__file__).resolve().parents[1].parent / "shared/thesis/architecture_tree/results_optimized"
)


def cli(*args, check=True, cwd=None, process=False) -> subprocess.CompletedProcess:
    if process or args[:1] == ("measure",):  # measure's child writes to the real stdout
        out = subprocess.run(
            [sys.executable, "-m", "flopmetrics", *args], capture_output=True, text=True, cwd=cwd
        )
    else:
        out = in_process(list(args), cwd)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def in_process(argv: list[str], cwd) -> subprocess.CompletedProcess:
    from flopmetrics.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(cwd or Path.cwd()),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors and --help
            code = exit_.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): the message to stderr, exit 1
        print(code, file=stderr)
        code = 1
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def rapl_readable() -> bool:
    try:
        RaplMeter()
        return True
    except MeterError:
        return False


def test_help_of_every_command_reads_and_exits_0():
    top = cli("--help").stdout
    for command in ("env", "measure", "estimate", "audit"):
        assert command in top
        assert "usage:" in cli(command, "--help").stdout


def test_a_renamed_option_names_its_new_name():
    out = cli("estimate", "--model", "tiny-llama", "--tokens", "1e6", "--gpu", "h100", check=False)
    assert out.returncode == 2 and "option --gpu was renamed to --target" in out.stderr


def test_env_says_what_this_machine_can_measure():
    facts = json.loads(cli("env", "--json").stdout)
    assert facts["torch"] and isinstance(facts["gpus"], list)
    assert facts["rapl"].startswith("readable" if rapl_readable() else "not readable")
    assert facts["slurm"].startswith(("reachable", "not reachable")) and facts["ncu"]
    text = cli("env").stdout
    assert "RAPL" in text and "Slurm" in text and "ncu" in text


def test_measure_times_any_command_and_says_honestly_whether_it_has_a_meter(tmp_path):
    out = tmp_path / "m.parquet"
    run = cli(
        "measure",
        "--device",
        "cpu",
        "--idle-s",
        "0.2",
        "--output",
        str(out),
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(0.3)",
    )
    row = pd.read_parquet(out).iloc[0]
    assert 0.3 <= row["time_s"] < 5 and row["exit_code"] == 0 and row["device"] == "cpu"
    assert row["git_revision"] and row["config_hash"] and "time.sleep" in row["command"]
    if rapl_readable():
        assert row["meter"] == "rapl" and row["energy_j"] > 0 and row["status"] == "ok"
    else:
        assert row["meter"] == "none" and math.isnan(row["energy_j"])
        assert "no CPU energy meter" in row["status"] and "energy not measured" in run.stderr
    # the command's exit status is passed on
    assert (
        cli(
            "measure",
            "--device",
            "cpu",
            "--idle-s",
            "0",
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(3)",
            check=False,
        ).returncode
        == 3
    )


def test_estimate_without_calibration_gives_the_datasheet_bound_not_nan(tmp_path):
    result = json.loads(
        cli(
            "estimate",
            "--model",
            "llama-3.2-1b",
            "--tokens",
            "1e9",
            "--target",
            "a100",
            "--precision",
            "bf16",
            "--json",
            check=False,
            cwd=tmp_path,  # no results/ here: the packaged calibration, which has no A100
        ).stdout
    )
    assert result["energy_j"] is None and "no measured calibration" in result["status"]
    limit = datasheet.most_lenient("a100", "bf16").max_flops_per_joule("bf16")
    assert result["energy_j_datasheet_bound"] == pytest.approx(result["flops"] / limit)
    assert result["kg_co2e_datasheet_bound"] == pytest.approx(
        result["energy_j_datasheet_bound"] / 3.6e6 * 1.58 * 0.480
    )
    text = cli(
        "estimate",
        "--model",
        "llama-3.2-1b",
        "--tokens",
        "1e9",
        "--target",
        "a100",
        "--precision",
        "bf16",
        check=False,
        cwd=tmp_path,
    )
    assert text.returncode == 3  # only the datasheet's bound
    text = text.stdout
    assert "lower bound" in text and "nan" not in text.lower()
    bad = cli(
        "estimate",
        "--model",
        "llama-3.2-1b",
        "--tokens",
        "1e9",
        "--target",
        "z9000",
        "--precision",
        "bf16",
        check=False,
    )
    assert bad.returncode == 2 and "z9000" in bad.stderr and "Traceback" not in bad.stderr
    gone = tmp_path / "none.parquet"
    named = cli(
        *("estimate", "--model", "llama-3.2-1b", "--tokens", "1e9", "--target", "h100"),
        *("--precision", "bf16", "--calibration", str(gone)),
        check=False,
    )
    assert named.returncode == 2 and f"--calibration {gone}: no such file" in named.stderr


def test_audit_flags_the_impossible_rows_of_a_csv(tmp_path):
    limit = datasheet.most_lenient("h100", "bf16").max_flops_per_joule("bf16")
    f = tmp_path / "runs.csv"
    pd.DataFrame(
        {
            "flops": [1e15, 1e15],
            "energy_j": [1e15 / (0.5 * limit), 1e15 / (2 * limit)],
            "time_s": [5.0, 5.0],
            "gpu": ["h100", "h100"],
            "precision": ["bf16", "bf16"],
        }
    ).to_csv(f, index=False)
    out = cli("audit", str(f), check=False)
    assert out.returncode == 1
    lines = [line for line in out.stdout.splitlines() if line.startswith("IMPOSSIBLE")]
    assert len(lines) == 1 and f"{f}:3 " in lines[0]  # the second data row, line 3 of the file
    assert "1 of 2 rows physically impossible" in out.stdout
    missing = tmp_path / "bad.csv"
    pd.DataFrame({"flops": [1.0]}).to_csv(missing, index=False)
    bad = cli("audit", str(missing), check=False)
    assert bad.returncode == 2 and "energy_j" in bad.stderr


def test_audit_judges_a_generic_label_on_the_variant_that_admits_the_row(tmp_path):
    """A row is impossible only where no variant of its label allows it, power included: 500 W
    is above the H100 PCIe's TDP but within the SXM's, 350 W within the A100 SXM's."""
    variants = datasheet.variants("h100")
    tdp = max(v.tdp_w for v in variants)
    below = max(v.tdp_w for v in variants if v.tdp_w < tdp)
    watts = (below + tdp) / 2  # too much for every board but the largest
    f = tmp_path / "runs.csv"
    pd.DataFrame(
        {
            "flops": [2e14 * 4, 2e14 * 4, 1e14 * 4],
            "energy_j": [watts * 4, 1.2 * tdp * 4, 350 * 4],
            "time_s": [4.0, 4.0, 4.0],
            "gpu": ["h100", "h100", "a100"],
            "precision": ["bf16", "bf16", "bf16"],
        }
    ).to_csv(f, index=False)
    out = cli("audit", str(f), check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("IMPOSSIBLE")]
    assert len(lines) == 1 and f"{f}:3 " in lines[0] and " W > limit" in lines[0], out.stdout
    assert out.returncode == 1
    # a CSV records no numerics: said as such, not as a failed check
    assert "numerics not recorded in 3" in out.stdout and "not trusted" not in out.stdout


def test_audit_and_version_are_scriptable(tmp_path):
    f = tmp_path / "runs.csv"
    pd.DataFrame(
        {
            "flops": [1e15, 1e15, 1e15],
            "energy_j": [2000.0, 10.0, -1.0],
            "time_s": [4.0, 4.0, 4.0],
            "gpu": ["h100"] * 3,
            "precision": ["bf16"] * 3,
        }
    ).to_csv(f, index=False)
    out = cli("audit", "--json", str(f), check=False)
    result = json.loads(out.stdout)  # stdout holds the object alone
    assert out.returncode == 1 and result["rows"] == 3
    assert [v["verdict"] for v in result["verdicts"]] == ["possible", "impossible", "unjudged"]
    assert "TFLOPs/J > limit" in result["verdicts"][1]["reason"]
    assert (
        "energy" in result["verdicts"][2]["reason"]
        or "flops_per_j" in result["verdicts"][2]["reason"]
    )
    version = cli("--version")
    assert version.stdout.startswith("flopmetrics ") and version.returncode == 0


def test_audit_flags_the_thesis_rows_above_the_physical_limit(thesis_dir):
    path = OPTIMIZED / "a100_bf16_llama3.2_1b_all_configs_results.jsonl"
    out = cli("audit", str(path), check=False)
    flagged = {
        int(line.split()[1].rsplit(":", 1)[1])
        for line in out.stdout.splitlines()
        if line.startswith("IMPOSSIBLE")
    }
    # independently: a line is impossible if any pass's FLOPs / mean window energy beats the most
    # lenient A100's bf16 peak / TDP
    limit = datasheet.most_lenient("a100", "bf16").max_flops_per_joule("bf16")
    expected = set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        rec = json.loads(line)
        if any(
            rec[f"{p}_flops_sum"] / rec[f"{p}_energy_mean"] > limit
            for p in ("forward", "backward")
            if f"{p}_flops_sum" in rec
        ):
            expected.add(lineno)
    assert flagged and flagged == expected
    assert out.returncode == 1


def test_the_api_measures_ones_own_step_with_the_devices_meters():
    import torch

    import flopmetrics

    model = torch.nn.Linear(64, 16)
    x = torch.randn(32, 64)

    def step():
        with torch.no_grad():
            return model(x)

    result = flopmetrics.measure(step, device="cpu", seconds=0.05, repeats=3, warmup=1, guard_s=0)
    assert result.flops == 2 * 32 * 64 * 16  # FlopCounterMode on one iteration: exactly the GEMM
    assert result.iterations >= 3 and 0 < result.time_s.mean < 0.05 and result.numerics == "finite"
    with flopmetrics.Monitor.for_device("cpu") as monitor:
        monitor.begin_window("w")
        step()
        window = monitor.end_window("w")
    if rapl_readable():
        assert (
            result.energy_j.mean > 0 and window.readings["energy_j"] > 0 and monitor.status == "ok"
        )
    else:
        assert result.energy_j is None and "no CPU energy meter" in result.status
        assert math.isnan(window.readings["energy_j"]) and "no CPU energy meter" in monitor.status
    assert "FLOPs" in result.summary()
    # what the step computed is checked, not only what is reported
    poisoned = flopmetrics.measure(
        lambda: model(x) * float("nan"),
        device="cpu",
        seconds=0.02,
        repeats=2,
        warmup=1,
        guard_s=0,
        flops=1.0,
    )
    assert poisoned.numerics == "non_finite"


def readme_block(marker: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return text.split(f"<!-- {marker} -->", 1)[1].split("```", 2)[1].split("\n", 1)[1]


def test_the_readmes_first_screen_runs_as_written():
    import os

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    lines = [line for line in readme_block("cli").splitlines() if line.strip()]
    assert len(lines) == 5
    for line in lines:
        out = subprocess.run(
            ["bash", "-c", line], capture_output=True, text=True, cwd=repo, env=env
        )
        if line.startswith("flopmetrics audit"):
            assert out.returncode == 1 and "IMPOSSIBLE" in out.stdout, (
                out.stderr
            )  # the thesis file has such rows
        else:  # estimate: 3 before the pipeline ran (the datasheet bound only)
            ok = (0, 3) if line.startswith("flopmetrics estimate") else (0,)
            assert out.returncode in ok, f"{line}\n{out.stdout}\n{out.stderr}"
            assert out.stdout.strip()
            if "--pass decode" in line:  # the packaged serving model answers it
                assert out.returncode == 0 and "kWh per million tokens" in out.stdout
    api = subprocess.run(
        [sys.executable, "-c", readme_block("api")], capture_output=True, text=True, cwd=repo
    )
    assert api.returncode == 0, api.stderr
    assert "FLOPs" in api.stdout and ("ok" in api.stdout or "no CPU energy meter" in api.stdout)


MINIMAL = {
    "estimate": [
        "--model",
        "tiny-llama",
        "--tokens",
        "1e6",
        "--target",
        "h100",
        "--precision",
        "bf16",
    ],
    "measure": ["--", "true"],
    "audit": ["x.csv"],
    "env": [],
}


def bounded_options():
    """(command, option, config key, schema of the key) of every option read from the schema."""
    from flopmetrics.cli import parser
    from flopmetrics.cli.options import schema_property

    sub = next(a for a in parser()._actions if a.dest == "command")
    for command, p in sub.choices.items():
        for action in p._actions:
            path = getattr(action.type, "schema_path", None)
            if path:
                yield command, action.option_strings[0], path, schema_property(path)


def refused_values(schema: dict) -> list[str]:
    values = ["nan", "inf", "-inf", "one"]
    if "minimum" in schema:
        values.append(str(schema["minimum"] - 1))
    if "exclusiveMinimum" in schema:
        values.append(str(schema["exclusiveMinimum"]))
    if "maximum" in schema:
        values.append(str(schema["maximum"] + 1))
    if schema.get("type") == "integer":
        values.append("1.5")
    return values


def test_every_bounded_option_refuses_what_its_config_key_refuses(capsys):
    from flopmetrics.cli import parser

    options = list(bounded_options())
    assert {(c, o) for c, o, _, _ in options} >= {
        ("estimate", "--tokens"),
        ("estimate", "--pue"),
        ("estimate", "--grid-intensity"),
        ("estimate", "--batch-size"),
        ("estimate", "--seq-len"),
        ("measure", "--idle-s"),
    }
    for command, option, path, schema in options:
        for value in refused_values(schema):
            argv = [command, *MINIMAL[command][:-2], f"{option}={value}", *MINIMAL[command][-2:]]
            with pytest.raises(SystemExit) as exit_:
                parser().parse_args(argv)
            err = capsys.readouterr().err
            assert exit_.value.code == 2 and f"argument {option}: " in err and path in err, argv


def test_audit_says_which_rows_it_could_not_judge_and_why(tmp_path):
    limit = datasheet.most_lenient("h100", "bf16").max_flops_per_joule("bf16")
    rows = {
        "flops": [1e15, 1e15, 1e15, "many"],
        "energy_j": [-5.0, None, 1e15 / (2 * limit), 10.0],
        "time_s": [5.0, 5.0, 5.0, 5.0],
        "gpu": ["h100"] * 4,
        "precision": ["bf16", "bf16", "fp8", "bf16"],
    }
    f = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    out = cli("audit", str(f), check=False)
    unjudged = [line for line in out.stdout.splitlines() if line.startswith("UNJUDGED")]
    assert out.returncode == 3 and len(unjudged) == 4, out.stdout
    assert "no datasheet limit" in unjudged[2] and f"{f}:5 " in unjudged[3]
    impossible = pd.DataFrame(rows).iloc[[2]].assign(precision="bf16")  # judged: too efficient
    impossible.to_csv(f, index=False)
    assert cli("audit", str(f), check=False).returncode == 1
    impossible.assign(energy_j=1e15 / (0.5 * limit)).to_csv(f, index=False)  # judged: possible
    assert cli("audit", str(f), check=False).returncode == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad = cli("audit", str(empty), check=False)
    assert bad.returncode == 2 and str(empty) in bad.stderr and "Traceback" not in bad.stderr
    header_only = tmp_path / "header.csv"
    header_only.write_text("flops,energy_j,time_s,gpu,precision\n")
    assert cli("audit", str(header_only), check=False).returncode == 3
    table = tmp_path / "other.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(table)
    bad = cli("audit", str(table), check=False)
    assert bad.returncode == 2 and "flops_per_j" in bad.stderr


def test_measure_writes_the_format_its_output_names_and_leaves_stdout_to_the_command(tmp_path):
    child = [sys.executable, "-c", "print('child says hi')"]
    for suffix, read in ((".csv", pd.read_csv), (".json", pd.read_json)):
        out = tmp_path / f"m{suffix}"
        run = cli("measure", "--device", "cpu", "--idle-s", "0", "--output", str(out), "--", *child)
        assert run.stdout == "child says hi\n"  # measure's own lines go to stderr
        assert "[measure] cpu:" in run.stderr
        row = read(out).iloc[0]
        assert row["device"] == "cpu" and row["exit_code"] == 0 and row["git_revision"]
    marker = tmp_path / "ran"
    bad = cli(
        "measure", "--output", str(tmp_path / "m.txt"), "--", "touch", str(marker), check=False
    )
    assert bad.returncode == 2 and "--output" in bad.stderr and ".txt" in bad.stderr
    assert not marker.exists()  # refused before the command ran


def test_measure_exits_as_a_shell_does_for_a_command_that_cannot_start(tmp_path):
    missing = cli("measure", "--device", "cpu", "--idle-s", "0", "--", "no-such-cmd", check=False)
    assert missing.returncode == 127 and "no-such-cmd: command not found" in missing.stderr
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")  # not executable
    denied = cli("measure", "--device", "cpu", "--idle-s", "0", "--", str(script), check=False)
    assert denied.returncode == 126 and "not executable" in denied.stderr


def test_measure_names_a_device_this_machine_does_not_have():
    out = cli("measure", "--device", "cuda:7", "--idle-s", "0", "--", "true", check=False)
    assert out.returncode == 2 and "--device cuda:7: no such device here" in out.stderr


def test_estimate_takes_the_grid_by_country_code_and_names_its_source_and_year(tmp_path):
    args = ("estimate", "--model", "llama-3.2-1b", "--tokens", "1e9", "--target", "h100")
    args += ("--precision", "bf16", "--json")
    zones = yaml.safe_load(
        (Path(flopmetrics.__file__).parent / "data/grid_intensity.yaml").read_text()
    )["zones"]
    for code in ("DE", "fr", "US-CAL-CISO"):
        r = json.loads(cli(*args, "--grid", code, cwd=tmp_path).stdout)
        g = zones[code.upper()]["g_per_kwh"]
        assert r["grid_intensity_g_per_kwh"] == g
        assert r["kg_co2e"] == pytest.approx(r["kwh"] * r["pue"] * g / 1000)
        assert r["grid_intensity_source"].startswith(code.upper() + " (")
        assert (
            "Electricity Maps" in r["grid_intensity_source"]
            and "2025" in r["grid_intensity_source"]
        )
    default = json.loads(cli(*args, cwd=tmp_path).stdout)
    assert (
        default["grid_intensity_source"].startswith("WORLD")
        and "2023" in default["grid_intensity_source"]
    )
    wrong = cli(*args, "--grid", "GERMANY", check=False, cwd=tmp_path)
    assert wrong.returncode == 2 and "'GERMANY' is not in the bundled table" in wrong.stderr
    both = cli(*args, "--grid", "DE", "--grid-intensity", "300", check=False, cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument --grid" in both.stderr
