import itertools

import pandas as pd
import pytest

from flopmetrics.flops import analytic
from flopmetrics.flops.counted import count_flops
from flopmetrics.workloads.mlp import build_mlp
from flopmetrics.workloads.precision import get_precision

# a generated range: depths 1..5, widths and token counts including odd and non-power-of-2 sizes
GRID = list(itertools.product([1, 2, 3, 5], [1, 7, 64, 128, 1000, 2048], [1, 16, 33, 256]))


def _counted_gemm(n, d, m, device="meta"):
    model, x = build_mlp(n, d, m, get_precision("fp32"), device)
    forward = count_flops(lambda: model(x)).total
    loss = model(x).sum()
    backward = count_flops(loss.backward).total
    return forward, backward


@pytest.mark.parametrize("n,d,m", GRID)
def test_ours_equals_flopcounter_gemm_exactly(n, d, m):
    forward, backward = _counted_gemm(n, d, m)
    assert analytic.mlp_forward(n, d, m).gemm == forward
    assert analytic.mlp_backward(n, d, m).gemm == backward


def test_counter_on_real_cpu_tensors_matches_meta():
    # the meta device runs no arithmetic; make sure real execution is counted the same
    assert _counted_gemm(3, 24, 5, device="cpu") == _counted_gemm(3, 24, 5, device="meta")


def test_conventions_differ_only_in_backward_activation():
    n, d, m = 4, 128, 16
    assert analytic.mlp_forward(n, d, m) == analytic.mlp_forward_thesis(n, d, m)
    ours, thesis = analytic.mlp_backward(n, d, m), analytic.mlp_backward_thesis(n, d, m)
    assert ours.gemm == thesis.gemm
    assert ours.activation == 3 * n * d * m
    assert thesis.activation == (2 * n - 1) * d * m


def test_thesis_formula_reproduces_published_hyper_surface(thesis_dir):
    df = pd.read_csv(thesis_dir / "metrics/hyper_surface/hyper_surface_summary.csv")
    assert len(df) == 1280
    fwd = [analytic.mlp_forward_thesis(int(r.n), int(r.d), int(r.m)).total for r in df.itertuples()]
    bwd = [
        analytic.mlp_backward_thesis(int(r.n), int(r.d), int(r.m)).total for r in df.itertuples()
    ]
    assert (df["theoretical_total_flops_fwd"].astype("int64") == pd.Series(fwd)).all()
    assert (df["theoretical_total_flops_bwd"].astype("int64") == pd.Series(bwd)).all()


def test_thesis_analytic_column_of_pytorch_comparison(thesis_dir):
    df = pd.read_csv(thesis_dir / "metrics/results/analytical_vs_pytorch_comparison.csv")
    for r in df.itertuples():
        assert analytic.mlp_forward_thesis(32, int(r.D), 128).total == r.analytical_forward_flops
        assert analytic.mlp_backward_thesis(32, int(r.D), 128).total == r.analytical_backward_flops
        # the profiler column there is the GEMM part (profiler counts no sigmoid)
        assert analytic.mlp_forward(32, int(r.D), 128).gemm == r.pytorch_forward_flops
        assert analytic.mlp_backward(32, int(r.D), 128).gemm == r.pytorch_backward_flops


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="positive integer"):
        analytic.mlp_forward(2, bad, 16)


def test_unknown_pass_or_convention():
    with pytest.raises(ValueError, match="convention='nope'"):
        analytic.mlp_flops("forward", 2, 2, 2, "nope")


def test_arithmetic_intensity_bytes_scale_with_dtype():
    assert analytic.mlp_bytes("forward", 2, 64, 16, 2) * 2 == analytic.mlp_bytes(
        "forward", 2, 64, 16, 4
    )
    # forward: per layer d^2 + 4dm elements
    assert analytic.mlp_bytes("forward", 1, 10, 3, 1) == 100 + 120
