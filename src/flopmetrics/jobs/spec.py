"""One job-parameter shape for every profiling job: one configuration.

The workflow builds it from the config (:func:`flopmetrics.jobs.params.job_params`) and passes
it to the job through ``params:``; the job reads it back with :meth:`JobSpec.from_params`.
Nothing here has a default: every value comes from the validated config, whose schema holds
the defaults.

``{"experiment": <a registered experiment>, "target": ..., "precision": ..., "workload": {what
to build: n, d, m | model, batch_size, seq_len, passes, attn_implementation, attention_flops |
size}, "measure": {repeats, min_repeats, target_rse, min_window_s, warmup_iterations, seed,
profiler_flops, launch}, "energy": {meter, sampler_hz, guard_s, idle_baseline_s}}`` plus
``"run_on_cpu": true`` only where it is on (so turning it on reruns exactly the jobs it
changes). The parameters (:meth:`JobSpec.params`) are hashed into each row's ``config_hash``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..contracts.experiments import BY_NAME
from ..contracts.vocabulary import LAUNCHES
from ..energy.setup import EnergySettings
from .params import job_name, recorded_config


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
    # eager | cuda_graph (each pass replayed from a CUDA graph where it can be) |
    # auto (replayed where launch-bound)
    launch: str

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
        if self.experiment not in BY_NAME:
            raise ValueError(
                f"unknown experiment {self.experiment!r}; expected one of {sorted(BY_NAME)}"
            )
        # a key the builder would not read must not pass for a setting that was applied
        e = BY_NAME[self.experiment]
        expected = {*e.workload_axes, *e.build_keys}
        if e.builder and set(self.workload) != expected:
            unknown, missing = set(self.workload) - expected, expected - set(self.workload)
            raise ValueError(
                f"{e.name} workload: unknown keys {sorted(unknown)}, missing {sorted(missing)}; "
                f"expected exactly {sorted(expected)}"
            )

    @classmethod
    def from_params(cls, params: dict) -> JobSpec:
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

    def params(self) -> dict:
        out = asdict(self)
        if not self.run_on_cpu:
            out.pop("run_on_cpu")
        return out

    def config(self) -> dict:
        """What a row's ``config_hash`` and ``config_json`` are made of."""
        return recorded_config(self.params())

    @property
    def name(self) -> str:
        return job_name(self.params())
