import pandas as pd
import pytest

from flopmetrics.energy import datasheet, gates

H100 = datasheet.by_key("h100_sxm")


def row(**kw):
    base = {
        "gpu_key": "h100_sxm",
        "gpu_label": "h100",
        "precision": "bf16",
        "status": "ok",
        "derived": False,
        "flops_per_s": 400e12,
        "flops_per_j": 0.6e12,
        "power_mean_w": 650.0,
        "power_limit_w": 700.0,
        "min_window_s": 2.0,
        "window_s_min": 2.01,
        "other_processes": 0,
        "throttle_reasons": "",
        "numerics": "finite",
    }
    base.update(kw)
    return base


def test_datasheet_limits():
    assert H100.peak_flops("bf16-mixed") == 989.5e12
    assert H100.max_flops_per_joule("fp16") == pytest.approx(989.5e12 / 700)
    assert datasheet.for_device_name("NVIDIA H100 80GB HBM3").key == "h100_sxm"
    assert datasheet.for_device_name("NVIDIA H100 PCIe").key == "h100_pcie"
    assert datasheet.for_device_name("NVIDIA A100-SXM4-80GB").label == "a100"
    # no bf16 path of its own on Volta: judged against the CUDA cores' fp32 rate, never "no limit"
    v100 = datasheet.by_key("v100_sxm2")
    assert (
        v100.path("bf16") == "fp32"
        and v100.peak_flops("bf16") == 15.7e12
        and v100.path("fp16") == "fp16"
    )
    assert datasheet.for_device_name("NVIDIA A100 80GB PCIe").key == "a100_80gb_pcie"
    assert datasheet.for_device_name("NVIDIA A100-PCIE-40GB").key == "a100_pcie"
    assert datasheet.for_device_name("NVIDIA L40").key == "l40"
    assert datasheet.for_device_name("NVIDIA L40S").key == "l40s"
    for spec in datasheet.table().values():
        assert spec.source and spec.tdp_w > 0


def test_unknown_gpu_is_a_clear_error():
    with pytest.raises(datasheet.UnknownGPU, match="no datasheet entry matches GPU 'NVIDIA B300'"):
        datasheet.for_device_name("NVIDIA B300")
    with pytest.raises(datasheet.UnknownGPU, match="no datasheet entry for GPU label 'x100'"):
        datasheet.most_lenient("x100", "fp16")


def test_wrong_architecture_fails_loudly():
    with pytest.raises(
        RuntimeError, match="measures GPU architecture 'a100' but runs on 'NVIDIA H100 80GB HBM3'"
    ):
        datasheet.check_label_matches("a100", "NVIDIA H100 80GB HBM3")
    assert datasheet.check_label_matches("h100", "NVIDIA H100 80GB HBM3").key == "h100_sxm"


@pytest.mark.parametrize(
    "change,failed",
    [
        ({}, ""),
        ({"flops_per_j": 1.5e12}, "flops_per_joule"),
        ({"flops_per_s": 1.2e15}, "peak_flops"),
        ({"power_mean_w": 800.0}, "power"),
        ({"window_s_min": 1.5}, "window"),
        ({"other_processes": 1}, "exclusive"),
        ({"throttle_reasons": "sw_power_cap,hw_thermal"}, "throttle"),
        ({"status": "oom"}, "status"),
        ({"status": "non_finite", "numerics": "non_finite"}, "status;finite"),
        ({"numerics": None}, "finite"),  # measured before the check existed: unknown, not trusted
        ({"throttle_reasons": "sw_power_cap"}, ""),  # power cap: flagged, not failed
        ({"throttle_reasons": "sw_power_cap,sw_thermal"}, ""),  # driver thermal regulation: flagged
        ({"throttle_reasons": "hw_slowdown"}, "throttle"),
        ({"throttle_reasons": "sw_thermal,hw_power_brake"}, "throttle"),
        (
            {"precision": "fp32", "flops_per_s": 70e12, "flops_per_j": 0.09e12},
            "peak_flops",
        ),  # above the 67 TFLOP/s FP32 peak
    ],
)
def test_each_gate(change, failed):
    out = gates.apply(pd.DataFrame([row(**change)]))
    assert out.loc[0, "gate_failures"] == failed
    assert bool(out.loc[0, "gates_passed"]) == (failed == "")


def test_driver_regulation_is_flagged_and_rows_are_kept():
    df = gates.apply(
        pd.DataFrame(
            [
                row(throttle_reasons="sw_power_cap"),
                row(flops_per_j=9e12),
                row(throttle_reasons="sw_thermal"),
            ]
        )
    )
    assert len(df) == 3 and df["power_capped"].tolist() == [True, False, False]
    assert df["thermally_limited"].tolist() == [False, False, True]
    assert df["gates_passed"].tolist() == [True, False, True]


def test_cpu_rows_have_no_physical_limits():
    df = gates.apply(
        pd.DataFrame(
            [
                row(
                    gpu_key="",
                    gpu_label="cpu",
                    flops_per_j=1e15,
                    flops_per_s=1e16,
                    power_limit_w=float("nan"),
                )
            ]
        )
    )
    assert bool(df.loc[0, "gates_passed"])


def test_derived_rows_skip_the_power_gate():
    df = gates.apply(pd.DataFrame([row(derived=True, power_mean_w=float("nan"))]))
    assert bool(df.loc[0, "gate_power"])
