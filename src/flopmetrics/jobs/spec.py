"""One job-parameter shape for every profiling job.

The workflow builds it from the config (:func:`flopmetrics.jobs.params.job_params`) and
passes it to the job through ``params:``; the job reads it back with :meth:`JobSpec.batch`, one
:class:`JobSpec` per configuration it measures. Nothing here has a default: every value comes
from the validated config, whose schema holds the defaults.

``{"experiment": "mlp" | "llm" | "matmul", "target": ...,
"workloads": [{"precision": ..., what to build: n, d, m | model, batch_size, seq_len, passes,
attn_implementation, attention_flops | size}, ...], "measure": {repeats, min_repeats, target_rse, min_window_s,
warmup_iterations, seed, profiler_flops, launch}, "energy": {meter, sampler_hz, guard_s, idle_baseline_s}}`` plus
``"run_on_cpu": true`` only where it is on (so turning it on reruns exactly the jobs it changes).
A single configuration's parameters (:meth:`JobSpec.params`, hashed into each row's
``config_hash``) have ``"precision"`` and ``"workload"`` in place of ``"workloads"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..contracts.vocabulary import LAUNCHES
from ..energy.setup import EnergySettings

EXPERIMENTS = ("mlp", "llm", "matmul")


@dataclass(frozen=True)
class MeasureSettings:
    repeats: int  # at most this many windows per pass
    min_repeats: int  # at least this many (or ``repeats``, if fewer)
    target_rse: (
        float  # stop once every pass's estimate has this relative standard error (0: never early)
    )
    min_window_s: float
    warmup_iterations: int
    seed: int
    profiler_flops: bool  # the thesis's torch.profiler FLOP count as well (slow)
    launch: str  # eager | cuda_graph (each pass replayed from a CUDA graph where it can be) | auto (where launch-bound)

    def __post_init__(self):
        if not isinstance(self.repeats, int) or self.repeats < 1:
            raise ValueError(f"repeats must be a positive integer, got {self.repeats!r}")
        if self.launch not in LAUNCHES:
            raise ValueError(f"unknown launch {self.launch!r}; expected one of {LAUNCHES}")


@dataclass(frozen=True)
class JobSpec:
    experiment: str
    target: str  # cpu, cuda, cuda:<i> or a GPU architecture label (h100, ...)
    precision: str
    workload: dict
    measure: MeasureSettings
    energy: EnergySettings
    run_on_cpu: bool = False  # absent from params means off (see module doc)

    def __post_init__(self):
        if self.experiment not in EXPERIMENTS:
            raise ValueError(
                f"unknown experiment {self.experiment!r}; expected one of {EXPERIMENTS}"
            )

    @classmethod
    def from_params(cls, params: dict) -> "JobSpec":
        p = dict(params)
        return cls(
            experiment=p["experiment"],
            target=p["target"],
            precision=p["precision"],
            workload=dict(p["workload"]),
            measure=MeasureSettings(**p["measure"]),
            energy=EnergySettings(**p["energy"]),
            run_on_cpu=bool(p.get("run_on_cpu", False)),
        )

    @classmethod
    def batch(cls, params: dict) -> list["JobSpec"]:
        """One spec per configuration of a job's parameters (the ``workloads`` shape)."""
        shared = {k: v for k, v in params.items() if k != "workloads"}
        return [
            cls.from_params(
                {
                    **shared,
                    "precision": w["precision"],
                    "workload": {k: v for k, v in w.items() if k != "precision"},
                }
            )
            for w in params["workloads"]
        ]

    def params(self) -> dict:
        out = asdict(self)
        if not self.run_on_cpu:
            out.pop("run_on_cpu")
        return out

    @property
    def name(self) -> str:
        what = " ".join(f"{k}={v}" for k, v in self.workload.items() if isinstance(v, (int, str)))
        return f"{self.experiment} {self.target} {self.precision} {what}"
