"""The embedded default config, end to end in a scratch directory, as a newcomer would run it."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import REPO, Workflow

pytestmark = pytest.mark.e2e

REQUIRED_COLUMNS = {
    "experiment": "object",
    "pass": "object",
    "derived": "bool",
    "target": "object",
    "device": "object",
    "precision": "object",
    "n": "int64",
    "d": "int64",
    "m": "int64",
    "flops_analytic": "int64",
    "flops_analytic_thesis": "int64",
    "flops_analytic_gemm": "int64",
    "flops_counted": "int64",
    "time_per_iter_s": "float64",
    "time_per_iter_sem_s": "float64",
    "flops_per_s": "float64",
    "arithmetic_intensity": "float64",
    "device_name": "object",
    "torch_version": "object",
    "hostname": "object",
    "git_revision": "object",
    "timestamp_utc": "object",
    "config_hash": "object",
}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    wf = Workflow(tmp_path_factory.mktemp("default"), config)
    wf.run()
    wf.run("--report", str(wf.workdir / "results/report.html"))
    return wf


def test_merged_parquet_schema_and_values(default_run):
    cfg = default_run.config["mlp"]
    df = pd.read_parquet(default_run.workdir / "results/merged/mlp.parquet")
    for col, dtype in REQUIRED_COLUMNS.items():
        assert col in df.columns, col
        assert str(df[col].dtype).replace("str", "object") == dtype, (col, df[col].dtype)
    jobs = (
        len(cfg["targets"]) * len(cfg["precisions"]) * len(cfg["n"]) * len(cfg["d"]) * len(cfg["m"])
    )
    assert len(df) == 4 * jobs
    assert df.groupby(["precision", "n", "d", "m"]).size().eq(4).all()
    assert "dtype" not in df.columns  # one name per idea: the number format is `precision`
    # counted GEMM FLOPs equal the analytic GEMM term, for every job and pass
    assert (df["flops_counted"] == df["flops_analytic_gemm"]).all()
    # closed forms, recomputed here independently
    f = df[df["pass"] == "forward"]
    assert (f["flops_analytic"] == f.n * 2 * f.d**2 * f.m + f.n * f.d * f.m).all()
    b = df[df["pass"] == "backward"]
    assert (
        b["flops_analytic_thesis"]
        == (b.n - 1) * 4 * b.d**2 * b.m + 2 * b.d**2 * b.m + (2 * b.n - 1) * b.d * b.m
    ).all()
    assert (b["flops_analytic"] - b["flops_analytic_thesis"] == (b.n + 1) * b.d * b.m).all()
    direct = df[~df["derived"]]
    assert (direct["time_per_iter_s"] > 0).all() and (
        direct["window_s_mean"] >= cfg["min_window_s"]
    ).all()
    # a 2-core CPU cannot exceed a few TFLOP/s: a physics check on the timing windows
    assert (direct["flops_per_s"] < 5e12).all()
    assert (df["repeats"] == cfg["repeats"]).all()
    assert df["config_hash"].nunique() == jobs


def test_figures_exist_and_are_images(default_run):
    figs = sorted((default_run.workdir / "results/figures/mlp").glob("*.png"))
    assert [p.name for p in figs] == [
        "flops_vs_d.png",
        "pct_diff_heatmap_backward.png",
        "pct_diff_heatmap_forward.png",
        "throughput_vs_intensity.png",
    ]
    for p in figs:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, p


def test_report_builds(default_run):
    html = (default_run.workdir / "results/report.html").read_text(errors="replace")
    assert "MLP FLOP validation" in html and "flops_vs_d.png" in html


def test_energy_per_class_from_the_committed_rows_in_a_table_and_the_report(default_run):
    wd = default_run.workdir
    table = pd.read_parquet(wd / "results/classes/class_energy.parquet")
    assert {"bf16", "fp32"} <= set(table["precision"]) and table["gpu_uuid"].str.startswith(
        "GPU-"
    ).all()
    shares = table[
        [f"energy_j_{c}" for c in ("gemm", "attention", "elementwise", "optimizer", "other")]
    ]
    # the Shapley shares add up to the tape, and the remainder is the tape against the step
    assert (shares.sum(axis=1) - table["tape_energy_j"]).abs().max() < 1e-6 * table[
        "tape_energy_j"
    ].max()
    step = table["train_step_energy_j"]
    assert ((100 * (table["tape_energy_j"] / step - 1)) - table["remainder_pct"]).abs().max() < 1e-9
    page = (wd / "results/classes/class_energy.html").read_text()
    first = table.iloc[0]
    assert f"{first['energy_j_gemm']:.4g}" in page and f"{first['remainder_pct']:.4g}" in page
    assert "energy per class" in (wd / "results/report.html").read_text(errors="replace")


def test_serving_rows_of_the_cpu_and_of_the_h200_reference(default_run):
    rows = pd.read_parquet(default_run.workdir / "results/merged/inference.parquet")
    measured = rows[rows["source"] == "measured"]
    assert sorted(zip(measured["batch_size"], measured["pass"], strict=True)) == [
        (1, "decode"),
        (1, "prefill"),
        (4, "decode"),
        (4, "prefill"),
    ]
    assert (measured["device"] == "cpu").all() and measured["numerics"].eq("finite").all()
    prompt = measured["pass"] == "prefill"
    assert (
        measured["tokens"] == measured["batch_size"].where(~prompt, 16 * measured["batch_size"])
    ).all()
    reference = rows[rows["source"] == "reference"]
    assert set(reference["gpu_label"]) == {"h200"} and reference["gates_passed"].all()
    # two models, two passes, four batch sizes; three more models at three batch sizes
    assert len(reference) == 2 * 2 * 4 + 3 * 2 * 3
    # decode's Joules per output token fall as the batch shares the weights' reading
    decode = reference[reference["pass"] == "decode"].sort_values("batch_size")
    for _, model in decode.groupby("model"):
        assert model["j_per_token"].is_monotonic_decreasing
    # no serving row in the energy table (its calibration fits training passes)
    energy = pd.read_parquet(default_run.workdir / "results/merged/energy.parquet")
    assert not energy["pass"].isin(["prefill", "decode"]).any()


def test_energy_calibration_and_co2e_from_reference_data(default_run):
    wd = default_run.workdir
    energy = pd.read_parquet(wd / "results/merged/energy.parquet")
    assert set(energy["source"]) == {"measured", "reference"}
    measured = energy[energy["source"] == "measured"]
    assert set(measured["experiment"]) == {"llm", "matmul"} and (measured["device"] == "cpu").all()
    # no CPU meter here: energy is NaN with a status saying why, never a made-up number
    assert measured["energy_j_per_iter"].isna().all() or measured["energy_method"].eq("rapl").all()
    reference = energy[energy["source"] == "reference"]
    assert set(reference["gpu_label"]) == {"h100", "h200"}
    # every reference row was checked finite and passes
    assert reference["numerics"].eq("finite").all() and reference["gates_passed"].all()
    # the H200's own card, and the adaptive protocol's windows: 3 to 10 per pass
    h200 = reference[(reference["gpu_label"] == "h200") & (reference["strategy"] == "none")]
    # two cards: the first sweep's, and the one that measured bf16 mixed, the MLP and the matmuls
    second = h200["gpu_uuid"] == "GPU-fd614aff-d804-1d50-c7d6-7a2f19fca86e"
    assert set(h200.loc[~second, "gpu_uuid"]) == {"GPU-272c57c7-6cbb-bca1-bbc1-c861e1834ef4"}
    assert set(h200.loc[second & (h200["experiment"] == "llm"), "precision"]) == {"bf16-mixed"}
    assert (
        h200.loc[
            (h200["experiment"] == "llm") & (h200["precision"] == "bf16-mixed"), "seq_len"
        ].nunique()
        == 5
    )
    assert h200.loc[~h200["derived"], "windows"].between(3, 10).all()
    fits = pd.read_parquet(wd / "results/calibration/calibration.parquet")
    # one fit per (GPU, world size, strategy, precision, pass): the H100's and the H200's side by
    # side, and the 4-GPU node's under DDP and FSDP at 1, 2 and 4 ranks as groups of their own
    assert fits.groupby(["gpu_label", "strategy"]).size().to_dict() == {
        ("h100", "none"): 20,
        ("h200", "none"): 20,
        ("h200", "ddp"): 12,
        ("h200", "fsdp"): 12,
    }
    nodes = reference[reference["strategy"] != "none"]
    assert set(zip(nodes["world_size"], nodes["strategy"], strict=False)) == {
        (n, s) for n in (1, 2, 4) for s in ("ddp", "fsdp")
    }
    assert (nodes["rank"] == -1).all() and (
        reference.loc[reference["strategy"] == "none", "world_size"] == 1
    ).all()
    node_row = (
        pd.read_parquet(wd / "results/co2e/co2e.parquet")
        .set_index("name")
        .loc["llama-1b-1B-tokens-4xh200-fsdp"]
    )
    assert node_row["basis"].startswith("measured") and node_row["world_size"] == 4
    scaling = pd.read_parquet(wd / "results/distributed/scaling.parquet")
    assert (
        len(scaling) == 6
        and (scaling.loc[scaling["world_size"] == 1, "scaling_efficiency"] == 1).all()
    )
    assert len(pd.read_parquet(wd / "results/merged/ranks.parquet")) == 8 * (1 + 2 + 4) + 6 * (
        1 + 2 + 4
    )  # DDP: 8 passes a rank, FSDP 6
    h200_row = (
        pd.read_parquet(wd / "results/co2e/co2e.parquet")
        .set_index("name")
        .loc["llama-1b-1B-tokens-fp32-h200"]
    )
    assert h200_row["target"] == "h200" and h200_row["basis"].startswith("measured")
    co2e = pd.read_parquet(wd / "results/co2e/co2e.parquet").set_index("name")
    row = co2e.loc["llama-1b-1B-tokens"]
    assert row["status"] == "ok" and row["kg_co2e_lo"] < row["kg_co2e"] < row["kg_co2e_hi"]
    # that exact configuration was measured (H100 reference): its rows, not a model, give the energy
    assert row["basis"].startswith("measured")
    ref = pd.read_parquet(wd / "results/merged/energy.parquet")
    ref = ref[
        (ref["model"] == row["model"])
        & (ref["precision"] == row["precision"])
        & (ref["pass"] == row["pass"])
        & (ref["seq_len"] == row["seq_len"])
        & (ref["batch_size"] == row["batch_size"])
        & ref["gates_passed"]
        & (ref["gpu_label"] == row["target"])
    ]
    assert row["energy_j"] == pytest.approx(row["steps"] * ref["energy_j_per_iter"].mean())
    assert row["kg_co2e"] == pytest.approx(row["kwh"] * 1.58 * 0.480)
    # the card spread of the committed H200 cards is in every interval, and the H200's own
    # (the H100 has fewer than calibration.min_cards cards: the largest of any GPU stands in)
    spread = pd.read_parquet(wd / "results/calibration/card_spread.parquet")
    assert spread["cards"].max() >= 4 and (spread["card_sd_pct"].dropna() > 0).all()
    h200_fits = fits[(fits["gpu_label"] == "h200") & (fits["strategy"] == "none")]
    assert h200_fits["card_sd_pct"].between(0, 10).all()
    assert h200_fits["card_spread_basis"].str.contains("cards").all()
    assert "card-to-card SD" in row["interval"] and "largest of any GPU" in row["interval"]
    assert (
        "card-to-card SD" in h200_row["interval"] and "largest of its GPU" in h200_row["interval"]
    )
    # the committed Nsight Compute runs: every launch classified, the formulas judged out of fold
    ncu = pd.read_parquet(wd / "results/merged/ncu.parquet")
    assert set(ncu["precision"]) == {"fp32", "tf32", "fp16", "bf16"} and ncu["class"].notna().all()
    gap = pd.read_parquet(wd / "results/ncu/gap.parquet")
    assert set(gap["split"]) == {"config", "shape", "kernel choice"}
    config = gap[(gap["split"] == "config") & (gap["gpu_label"] == "h100")]
    assert not config.duplicated(["precision", "run", "n", "d", "m", "pass"]).any()
    assert ((config["d"] == 128) & (config["m"] == 16)).any()
    assert (
        config.groupby(["precision", "pass"])["error_pct"]
        .apply(lambda e: e.abs().median())
        .le(1)
        .all()
    )
    # the H200's unseen shapes, predicted from the kernels cuBLAS launched (each shape one fold)
    chosen = gap[gap["split"] == "kernel choice"]
    assert set(chosen["gpu_label"]) == {"h200"} and set(chosen["precision"]) == {"fp32", "bf16"}
    assert not chosen.duplicated(["precision", "run", "n", "d", "m", "pass"]).any()
    assert (
        chosen["error_pct"].abs().median() <= 1 and (chosen["error_pct"].abs() > 5).mean() <= 0.05
    )
    for fig in ("flops_by_class", "gap_heatmap", "parity"):
        assert (wd / f"results/figures/ncu/{fig}.png").stat().st_size > 10_000, fig
    for fig in (
        "energy_efficiency",
        "forward_vs_backward",
        "efficiency_vs_seq_len",
        "power_trace",
        "calibration_parity",
        "co2e",
        "distributed_scaling",
    ):
        assert (wd / f"results/figures/energy/{fig}.png").stat().st_size > 10_000, fig


def test_cli_estimate_matches_the_pipelines_co2e_table(default_run):
    import json
    import subprocess
    import sys

    wd = default_run.workdir
    row = (
        pd.read_parquet(wd / "results/co2e/co2e.parquet")
        .set_index("name")
        .loc["llama-1b-1B-tokens"]
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "flopmetrics",
            "estimate",
            "--model",
            row["model"],
            "--tokens",
            str(row["tokens"]),
            "--target",
            row["target"],
            "--precision",
            row["precision"],
            "--pass",
            row["pass"],
            "--batch-size",
            str(row["batch_size"]),
            "--seq-len",
            str(row["seq_len"]),
            "--calibration",
            str(wd / "results/calibration/calibration.parquet"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=wd,
    )
    cli = json.loads(out.stdout)
    for key in ("flops", "energy_j", "kwh", "kg_co2e", "kg_co2e_lo", "kg_co2e_hi"):
        assert cli[key] == pytest.approx(row[key], rel=1e-9), key
    assert cli["status"] == "ok" and cli["energy_j_datasheet_bound"] < cli["energy_j"]


def test_the_report_opens_in_a_real_browser_without_errors(default_run):
    import os

    import browser

    if not browser.chromium():
        if os.environ.get("FLOPMETRICS_BROWSER_REQUIRED"):
            pytest.fail("Chromium is required here (Debian package chromium) but not installed")
        pytest.skip("no Chromium on this machine (Debian package chromium)")
    report = default_run.workdir / "results/report.html"
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report.png"
    errors = browser.open_page(report.as_uri(), shot)
    assert errors == [], errors
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    # a table is shown in the page, not downloaded: click it as a reader does and find its
    # values in what the page then shows
    calibration = pd.read_parquet(default_run.workdir / "results/calibration/calibration.parquet")
    text, errors = browser.shown_result(report.as_uri(), "Calibration and CO2e", "calibration")
    assert errors == [], errors
    first = calibration.iloc[0]
    assert f"{first['ee_flops_per_j']:.4g}" in text and first["gpu_label"] in text, text[:500]
    assert f"{len(calibration)} rows" in text
    co2e = pd.read_parquet(default_run.workdir / "results/co2e/co2e.parquet")
    text, _ = browser.shown_result(report.as_uri(), "Calibration and CO2e", "CO2e")
    assert f"{co2e.iloc[0]['kg_co2e']:.4g}" in text and co2e.iloc[0]["name"] in text


def test_the_readmes_dry_run_and_summary_commands(default_run):
    # `snakemake -n` and `snakemake -n --summary`, as README.md's table gives them, after a full run
    assert default_run.scheduled() == {}
    out = default_run.run("-n", "--summary").stdout
    for path in (
        "results/co2e/co2e.parquet",
        "results/calibration/calibration.csv",
        "results/merged/energy.parquet",
    ):
        assert path in out, path
    assert "update pending" not in out


def test_the_pipeline_fits_the_serving_model_and_the_cli_uses_it(default_run):
    """`results/calibration/serving.parquet` from the committed serving rows; `flopmetrics
    estimate --pass decode` in that folder answers from it, and its interval holds the measured
    row of the configuration asked for."""
    import json
    import subprocess
    import sys

    wd = default_run.workdir
    default_run.run("results/calibration/serving.parquet")
    table = pd.read_parquet(wd / "results/calibration/serving.parquet")
    decode = table[(table["gpu_label"] == "h200") & (table["pass"] == "decode")].iloc[0]
    assert decode["configs"] >= 8 and "llama-3.1-8b" in decode["models"]
    assert decode["s_per_byte"] >= 1 / 4.8e12 and decode["model_extrapolation_err_pct"] > 0
    rows = pd.read_parquet(wd / "results/merged/inference.parquet")
    measured = rows[
        (rows["model"] == "llama-3.1-8b") & (rows["pass"] == "decode") & (rows["batch_size"] == 64)
    ].iloc[0]
    args = ["--model", "llama-3.1-8b", "--tokens", "1e6", "--target", "h200"]
    args += ["--precision", "bf16", "--pass", "decode", "--batch-size", "64", "--json"]

    def estimate(*more):
        out = subprocess.run(
            [sys.executable, "-m", "flopmetrics", "estimate", *args, *more],
            capture_output=True,
            text=True,
            check=True,
            cwd=wd,
        )
        return json.loads(out.stdout)

    exact = estimate()  # measured: the merged serving rows hold this configuration
    assert exact["basis"].startswith("measured") and exact["energy_j"] == pytest.approx(
        measured["j_per_token"] * 1e6
    )
    rows.iloc[:0].to_parquet(wd / "none.parquet")
    cli = estimate("--measured", "none.parquet")  # as if nobody had measured it: the model
    assert cli["calibration"] == "results/calibration/serving.parquet"
    assert cli["basis"].startswith("serving model")
    assert cli["j_per_token_lo"] <= measured["j_per_token"] <= cli["j_per_token_hi"]
    assert cli["j_per_token"] == pytest.approx(measured["j_per_token"], rel=0.1)
