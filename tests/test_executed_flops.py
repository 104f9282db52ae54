"""Executed FLOPs from the kernel the library launches (issue 35): the decoding rules on launches
whose counts Nsight Compute measured, the held-out judgment on committed H200 captures, and the
``flopmetrics flops`` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flopmetrics.ncu import choice, kernels

REPO = Path(__file__).resolve().parents[1]
H200 = REPO / "resources/reference/h200"
sys.path.insert(0, str(REPO / "benchmarks"))


def test_a_cluster_s_idle_ctas_execute_zero_filled_tiles():
    # H100 bf16 dW 512 x 512 x 128: 88 tiles, the 2 x 4 clusters launch 96; ncu counted 96
    dec = kernels.decode("nvjet_sm90_tst_64x48_64x15_2x4_h_bz_TNT", "(8, 12, 1)", 512, 512, 128)
    assert dec.ctas == 96
    assert dec.flops == 2 * 64 * 48 * 96 * 128


def test_cutlass_s_swizzled_grid_sets_the_orientation():
    # H200 bf16 dX 3243 x 313 x 3243 on a 128x256 tile: (52, 1) is 13 tiles x 4 by 3 tiles
    name = "void cutlass::Kernel2<cutlass_75_tensorop_s1688gemm_bf16_128x256_nt_align1>(x)"
    dec = kernels.decode(name, [52, 1, 3], 3243, 313, 3243)
    assert (dec.ctas, dec.splits, dec.swapped) == (39, 3, True)
    assert dec.k_executed == 1088 + 1088 + 1088  # slices of pad(1081, 8), each in 32-steps


def test_split_k_slices_by_family():
    assert kernels.k_executed("xmma", 2007, 12, 32) == 12 * 192  # equal, padded slices
    assert kernels.k_executed("cutlass_tensorop", 2007, 12, 32) == 11 * 192 + 160
    assert kernels.k_executed("cutlass_tensorop", 128, 16, 16) == 16 * 16  # empty slices: a step


def test_a_persistent_grid_computes_each_tile_once():
    # H100 bf16 dW 1792 x 1792 x 80: one CTA per SM (2 x 66), 224 tiles
    dec = kernels.decode("nvjet_sm90_tst_112x128_64x7_2x1_v_bz_TNN", (2, 66, 1), 1792, 1792, 80)
    assert dec.ctas == 16 * 14 and dec.k_executed == 128


def test_a_name_without_a_tile_is_flagged():
    with pytest.raises(kernels.UnknownKernel, match="states no tile"):
        kernels.decode("gemv2T_kernel_val", (1, 1, 1), 16, 16, 16)


def test_unseen_shapes_are_predicted_within_the_issue_s_bounds():
    """The seed-36 set, drawn and planned before its ncu run, predicted from its kernel choice
    with terms fitted on the development set's captures only."""
    import unseen_flops

    configs = json.loads((H200 / "kernel_choice/unseen2_configs.json").read_text())["shapes"]
    unseen, _ = unseen_flops.split_roles(unseen_flops.read(H200 / "ncu", "unseen2_*"), configs)
    training = unseen_flops.read(H200 / "ncu", "unseen1_*")
    table = unseen_flops.tables(sorted((H200 / "kernel_choice").glob("unseen2_*.json.gz")))
    df = unseen_flops.judged(unseen, training, table)
    err = df["error_pct"].abs()
    assert len(df) == 144
    assert np.median(err) <= 1.0 and (err > 5).mean() <= 0.05


def _flops(*args):
    return subprocess.run(
        [sys.executable, "-m", "flopmetrics", "flops", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_flops_command_prints_a_prediction_from_a_table():
    table = str(H200 / "kernel_choice/unseen2_fp32.json.gz")
    out = _flops(
        "--mlp",
        "4,755,10",
        "--precision",
        "fp32",
        "--pass",
        "backward",
        "--choice",
        table,
        "--json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    parts = sum(doc[k] for k in ("tiles", "epilogue", "split_k", "elementwise", "reduction"))
    assert doc["total"] == pytest.approx(parts)
    assert {c["role"] for c in doc["calls"]} == {"dX", "dW"}
    assert doc["choice"]["gpu_uuid"].startswith("GPU-")


def test_flops_command_refuses_a_shape_outside_the_table(capsys):
    # in-process (the command's own main): three refusals, no interpreter start each
    from flopmetrics.cli import main

    table = str(H200 / "kernel_choice/unseen2_fp32.json.gz")
    common = ["--pass", "forward", "--choice", table]
    assert main(["flops", "--mlp", "4,755,11", "--precision", "fp32", *common]) == 2
    assert "no fwd call M755 N11 K755" in capsys.readouterr().err
    assert main(["flops", "--mlp", "4,755,10", "--precision", "fp16", *common]) == 2
    assert "no training capture of the MLP's forward in fp16" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["flops", "--mlp", "4,755", "--precision", "fp32", *common])
    assert bad.value.code == 2 and "--mlp '4,755'" in capsys.readouterr().err


def test_a_campaign_s_plan_beside_the_tables_is_no_table_and_anything_else_is_an_error(tmp_path):
    source = REPO / "resources/reference/h200/kernel_choice"
    for name in ("unseen1_bf16.json.gz", "unseen1_configs.json"):
        shutil.copy(source / name, tmp_path / name)
    tables = choice.tables_by_gpu([tmp_path])
    assert list(tables) == ["h200"] and tables["h200"]
    (tmp_path / "notes.json").write_text(json.dumps({"what": "not a table"}))
    with pytest.raises(ValueError, match="notes.json: not a kernel-choice table"):
        choice.tables_by_gpu([tmp_path])
