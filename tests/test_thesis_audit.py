"""The thesis audit on the thesis's published tree (../shared/thesis/architecture_tree)."""

import json

import pandas as pd
import pytest

from flopmetrics.analysis.thesis import (
    ThesisImportError,
    audit,
    physics,
    read_architecture,
    readings,
)
from flopmetrics.energy import datasheet

# the variants added with the audit: the counts of the issue were taken without them
ADDED = {"l40", "a100_80gb_pcie"}


def before_the_audit() -> dict:
    return {k: v for k, v in datasheet.table().items() if k not in ADDED}


@pytest.fixture(scope="module")
def tree(thesis_dir):
    return thesis_dir / "architecture_tree"


def test_every_file_of_the_tree_is_accounted_for(tree):
    rows, log = read_architecture(tree)
    files = sorted(str(p.relative_to(tree.parent)) for p in tree.rglob("*") if p.is_file())
    assert sorted(r.path for r in log.files) == files
    text = "\n".join(log.lines())
    for f in files:
        assert f in text
    by_kind = pd.Series([r.kind for r in log.files]).value_counts()
    assert by_kind["all_configs"] == 12 and by_kind["per_config"] == 36 and by_kind["baseline"] == 8
    # every per-config file repeats a line of its all-configs file: counted once, not twice
    per_config = [r for r in log.files if r.kind == "per_config"]
    assert all(
        r.read == 1 and r.duplicates == 1 and r.imported == 0 and not r.rejected for r in per_config
    )
    assert sum(r.imported for r in log.files) == 36 + 8 and not any(r.rejected for r in log.files)
    assert (
        len(rows) == 70 + 16 and rows["source_file"].is_unique is False
    )  # forward and backward share a line
    assert not rows.duplicated(["source_file", "pass"]).any()
    assert set(rows["protocol"]) == {"optimized", "baseline"}


@pytest.mark.parametrize("sub", ["results_optimized", "results_baseline"])
def test_each_subfolder_alone(tree, sub):
    rows, log = read_architecture(tree / sub)
    assert {r.path.split("/")[0] for r in log.files} == {sub}
    assert set(rows["protocol"]) == {sub.removeprefix("results_")}


def test_counts_on_results_optimized_with_the_datasheet_as_before(tree):
    rows, _ = read_architecture(tree / "results_optimized", table=before_the_audit())
    fwd, bwd = rows[rows["pass"] == "forward"], rows[rows["pass"] == "backward"]
    assert len(fwd) == 36 and len(bwd) == 34
    assert fwd["impossible_every_variant"].sum() == 31
    assert fwd["impossible_consistent_variant"].sum() == 32
    assert (
        ~fwd["gate_flops_per_joule"]
    ).sum() == 32  # the gate judges the power-consistent variants
    assert (
        bwd["impossible_every_variant"].sum() == 0
        and bwd["impossible_consistent_variant"].sum() == 0
    )
    assert rows["gate_power"].all()  # every implied power fits the largest TDP of its label (+10 %)
    # the published headline: L40S FP16 forward m=1024 at 6.24 TFLOPs/J, 3x the L40S's limit
    l40s = fwd[(fwd.gpu_name == "l40s") & (fwd.precision == "fp16") & (fwd.seq_len == 1024)].iloc[0]
    assert (
        l40s["tflops_per_j"] == pytest.approx(6.24, abs=0.01) and l40s["impossible_every_variant"]
    )
    # the importer reproduces the thesis's own efficiency column
    assert (
        (rows["published_gflops_per_joule"] * 1e9 - rows["flops_per_j"]).abs() / rows["flops_per_j"]
    ).max() < 1e-9


def test_a100_small_is_possible_only_on_a_pcie_card(tree):
    rows, _ = read_architecture(tree / "results_optimized", table=before_the_audit())
    fwd = rows[
        (rows["pass"] == "forward") & (rows.gpu_name == "a100") & (rows.config_name == "small")
    ]
    for precision, value in (("bf16", 0.94), ("fp16", 0.89)):
        r = fwd[fwd.precision == precision].iloc[0]
        assert r["tflops_per_j"] == pytest.approx(value, abs=0.01)
        assert r["power_mean_w"] == pytest.approx(205, abs=10)
        assert set(r["variants_impossible"].split(",")) == {"a100_40gb_sxm", "a100_80gb_sxm"}
        assert "a100_pcie" in r["variants_power_consistent"].split(",")
        assert not r["impossible_every_variant"] and not r["impossible_consistent_variant"]
        assert (
            "possible on a100_pcie (1.25); impossible on a100_40gb_sxm (0.78), a100_80gb_sxm (0.78)"
            in r["verdict"]
        )


def test_h100_bf16_mid_only_sxm_is_consistent(tree):
    rows, _ = read_architecture(tree / "results_optimized")
    r = rows[
        (rows["pass"] == "forward")
        & (rows.gpu_name == "h100")
        & (rows.precision == "bf16")
        & (rows.config_name == "mid")
    ].iloc[0]
    assert r["tflops_per_j"] == pytest.approx(1.645, abs=0.001)
    assert r["power_mean_w"] == pytest.approx(483, abs=2)
    assert r["variants_power_consistent"] == "h100_sxm" and r["variants_impossible"] == "h100_sxm"
    assert not r["impossible_every_variant"] and r["impossible_consistent_variant"]
    assert not r["gate_flops_per_joule"]
    # 794 TFLOP/s: more than a PCIe card's 756, within the SXM card's 989.5 that its power implies
    assert r["flops_per_s"] == pytest.approx(794e12, rel=0.01) and r["gate_peak_flops"]


def write(path, *records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def record(tree, name="h100_fp16_llama3.2_1b_all_configs_results.jsonl"):
    return json.loads((tree / "results_optimized" / name).read_text().splitlines()[0])


def test_v100_bf16_is_judged_against_the_path_that_runs_it(tree, tmp_path):
    rec = record(tree)
    rec.update(gpu_config="v100", precision="bf16")
    for p in ("forward", "backward"):  # 4 TFLOPs/J at 250 W: bf16 on a V100 runs on the CUDA cores
        rec[f"{p}_energy_mean"] = rec[f"{p}_flops_sum"] / 4e12
        rec[f"{p}_gpu_time_mean"] = rec[f"{p}_energy_mean"] / 250 * 1e6
    write(tmp_path / "v100_bf16_llama3.2_1b_all_configs_results.jsonl", rec)
    rows, _ = read_architecture(tmp_path)
    assert (rows["precision_path"] == "fp32").all()
    assert rows["impossible_every_variant"].all() and not rows["gate_flops_per_joule"].any()
    assert rows["max_flops_per_j"].max() == pytest.approx(
        14e12 / 250
    )  # both cards fit 250 W: the PCIe limit


def test_bad_records_are_rejected_naming_file_and_line(tree, tmp_path):
    good = record(tree)
    d = tmp_path / "results_optimized"
    write(
        d / "h100_fp16_llama3.2_1b_all_configs_results.jsonl",
        good,
        "{not json",
        {k: v for k, v in good.items() if k != "forward_energy_mean"},
    )
    write(d / "h100_bf16_llama3.2_1b_all_configs_results.jsonl", "")
    write(d / "rtx9_fp16_llama3.2_1b_all_configs_results.jsonl", {**good, "gpu_config": "rtx9"})
    write(d / "h100_fp16_llama3.2_1b_small_result.jsonl", {**good, "forward_energy_mean": 1.0})
    (d / "notes.txt").write_text("hello\n")
    rows, log = read_architecture(tmp_path)
    assert len(rows) == 2  # the good record, forward and backward
    text = "\n".join(log.lines())
    assert "results_optimized/h100_fp16_llama3.2_1b_all_configs_results.jsonl:2: not JSON" in text
    assert "all_configs_results.jsonl:3: missing key 'forward_energy_mean'" in text
    assert "h100_bf16_llama3.2_1b_all_configs_results.jsonl:1: empty file" in text
    assert (
        "rtx9_fp16_llama3.2_1b_all_configs_results.jsonl:1: file name: unknown GPU name 'rtx9'"
        in text
    )
    assert "small_result.jsonl:1: conflicts with" in text and "forward_energy_mean" in text
    assert "notes.txt: not a thesis result file" in text
    assert "total: 5 files, 5 records read, 1 imported, 0 duplicates, 5 rejected" in text
    (d / "h100_fp16_llama3.2_1b_all_configs_results.jsonl").unlink()
    assert len(read_architecture(tmp_path)[0]) == 2  # the per-config record stands alone now
    (d / "h100_fp16_llama3.2_1b_small_result.jsonl").unlink()
    with pytest.raises(ThesisImportError, match="no thesis records imported"):
        read_architecture(tmp_path)
    with pytest.raises(ThesisImportError, match="is not a directory"):
        read_architecture(tmp_path / "missing")


def test_wrong_types_and_a_disagreeing_file_name(tree, tmp_path):
    good = record(tree)
    write(
        tmp_path / "h100_fp16_llama3.2_1b_all_configs_results.jsonl",
        {**good, "forward_flops_sum": "many"},
        {**good, "precision": "bf16"},
        [1, 2],
        good,
    )
    rows, log = read_architecture(tmp_path)
    text = "\n".join(log.lines())
    assert ":1: key 'forward_flops_sum': expected a number, got 'many'" in text
    assert ":2: key 'precision' is 'bf16' but the file name says 'fp16'" in text
    assert ":3: expected a JSON object, got list" in text
    assert len(rows) == 2


def test_baseline_readings_side_by_side(tree):
    rows, _ = read_architecture(tree / "results_baseline")
    assert (rows["precision"] == "bf16").all() and set(rows["precision_file"]) == {"fp16", "fp32"}
    r = readings.readings(rows, tree / "results_baseline")
    # the two A100 fp16 forward rows imply more power than any A100 draws
    a100 = rows[
        (rows.gpu_name.str.startswith("a100"))
        & (rows.precision_file == "fp16")
        & (rows["pass"] == "forward")
    ]
    assert sorted(a100["power_mean_w"].round()) == [1264, 2087] and not a100["gate_power"].any()
    # the thesis's table used flops_sum / energy_sum, in GFLOPs/J, and called the l40 files L40S
    used = r[r["used_by_thesis_table"]]
    assert set(used["convention"]) == {readings.CONVENTIONS["energy_sum"]}
    assert set(used.loc[used.gpu_name == "l40", "gpu_read"]) == {"l40s"}
    assert set(zip(used.gpu_name, used.precision_file, used["pass"], strict=False)) >= {
        ("l40", "fp16", "forward"),
        ("a40", "fp32", "backward"),
    }
    # every baseline row has one primary reading (what ran, the script's convention) and its l40
    # twin
    assert r.groupby(["source_file", "pass"])["primary"].sum().eq(1).all()
    assert (
        len(r[r.gpu_name == "l40"]) == 2 * 2 * 2 * 2 * 2
    )  # files x passes x conventions x precisions x names
    primary = r[r["primary"]].set_index(["source_file", "pass"])
    ours = rows.set_index(["source_file", "pass"]).loc[primary.index, "flops_per_j"]
    assert (primary["tflops_per_j"] * 1e12 / ours).sub(1).abs().max() < 1e-12


def test_audit_table(tree):
    rows, _ = read_architecture(tree)
    table = audit.summary(rows)
    assert table["rows"].sum() == len(rows)
    opt = table[(table.protocol == "optimized") & (table["pass"] == "forward")]
    assert opt["rows"].sum() == 36
    md = audit.markdown(table)
    assert md.count("\n") == len(table) + 2 + table.groupby(["protocol", "pass"]).ngroups


def test_gate_limits_come_from_the_judged_variants():
    v = physics.judge("h100", "bf16", 1.0e12, 700e12, 300.0)
    assert v["variants_power_consistent"] == "h100_sxm,h100_pcie"
    assert v["max_flops_per_j"] == pytest.approx(756e12 / 350) and v[
        "peak_flops_per_s"
    ] == pytest.approx(989.5e12)
    hot = physics.judge("h100", "bf16", 1.0e12, 700e12, 900.0)
    assert (
        hot["variants_power_consistent"] == "" and "exceeds every variant's TDP" in hot["verdict"]
    )


def test_the_rules_depend_on_the_files_they_run():
    from flopmetrics.pipeline.code import sources

    def names(files):
        return {f.rsplit("/", 1)[-1] for f in files if "/thesis/" in f}

    assert names(sources("flopmetrics.analysis.thesis")) == {
        "__init__.py",
        "files.py",
        "records.py",
        "names.py",
        "physics.py",
    }
    # the audit summarizes judged rows: an edit of the import reruns it through its input, not its
    # code
    assert names(sources("flopmetrics.analysis.thesis.audit")) == {"audit.py"}
