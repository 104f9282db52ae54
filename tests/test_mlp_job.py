import pytest
from conftest import job_spec

from flopmetrics.jobs.run import run
from flopmetrics.jobs.spec import JobSpec


@pytest.fixture(scope="module")
def table():
    return run(
        job_spec("mlp", {"n": 2, "d": 32, "m": 8}, measure={"profiler_flops": True}),
        progress=lambda m: None,
    )[0]


def test_one_row_per_pass(table):
    assert table["pass"].tolist() == ["forward", "forward_train", "forward_backward", "backward"]
    assert (table["launch"] == "eager").all()  # each row says how its iterations were issued
    assert table.set_index("pass")["derived"].to_dict() == {
        "forward": False,
        "forward_train": False,
        "forward_backward": False,
        "backward": True,
    }


def test_counted_flops_are_exactly_the_measured_work(table):
    t = table.set_index("pass")
    # the counter counts GEMMs only: equals the analytic GEMM term of each pass exactly
    assert (t["flops_counted"] == t["flops_analytic_gemm"]).all()
    assert (
        t.loc["forward_backward", "flops_counted"]
        == t.loc["forward", "flops_counted"] + t.loc["backward", "flops_counted"]
    )
    assert (
        t.loc["backward", "flops_analytic"]
        == 2 * 2 * 32 * 32 * 8 + 2 * 32 * 32 * 8 + 3 * 2 * 32 * 8
    )


def test_profiler_column_matches_counter_on_gemm(table):
    t = table.set_index("pass")
    assert t.loc["forward", "flops_profiler"] == t.loc["forward", "flops_counted"]


def test_timing_is_positive_and_backward_is_derived(table):
    t = table.set_index("pass")
    assert (t.loc[["forward", "forward_train", "forward_backward"], "time_per_iter_s"] > 0).all()
    assert (t.loc[["forward", "forward_train", "forward_backward"], "window_s_mean"] >= 0.02).all()
    assert t.loc["backward", "time_per_iter_s"] == pytest.approx(
        t.loc["forward_backward", "time_per_iter_s"] - t.loc["forward_train", "time_per_iter_s"]
    )


def test_provenance_columns(table):
    row = table.iloc[0]
    for col in (
        "device_name",
        "torch_version",
        "transformers_version",
        "hostname",
        "git_revision",
        "timestamp_utc",
        "config_hash",
        "cpu_model",
    ):
        assert isinstance(row[col], str) and row[col], col
    assert table["config_hash"].nunique() == 1


def test_every_row_carries_the_hosts_probe(table):
    """The host's speed at issuing a kernel, taken beside the windows, on every row of a
    configuration: one finite value, above zero and below a millisecond per operation."""
    probe = table["host_op_us"]
    assert probe.nunique() == 1 and 0 < probe.iloc[0] < 1000


def test_unknown_precision_rejected():
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        run(job_spec("mlp", {"n": 2, "d": 2, "m": 2}, precision="fp8"), progress=lambda m: None)


def test_spec_round_trips_through_params():
    spec = job_spec("mlp", {"n": 2, "d": 2, "m": 2})
    assert JobSpec.from_params(spec.params()) == spec
    assert "run_on_cpu" not in spec.params()


def test_tf32_setting_covers_backward(monkeypatch):
    """TF32 must be on for every matmul of a tf32 job, backward included (it runs outside
    autocast): record the flag each time a matmul executes."""
    import torch

    from flopmetrics.workloads.mlp import MLPWorkload, Shape

    seen = []
    wl = MLPWorkload("cpu", "tf32", Shape(2, 8, 4))
    step = wl.steps()["forward_backward"]

    def hook(*args):
        seen.append(torch.backends.cuda.matmul.allow_tf32)

    handles = [p.register_hook(lambda g: hook()) for p in wl.model.parameters()]
    with wl.precision_scope():
        step()
    for h in handles:
        h.remove()
    assert seen and all(seen)
    assert torch.backends.cuda.matmul.allow_tf32 is False  # restored after the job
