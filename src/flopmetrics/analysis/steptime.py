"""A step's time and energy from what bounds it (issue 32), fitted per GPU and precision on
measured eager rows of the reference model, and meant to hold for models it never saw.

From a step's operation stream (:mod:`flopmetrics.flops.opstream`: each kernel's class, FLOPs,
bytes and issuing phase, recorded on the meta device):

- the GPU's time at full clock: each matrix product (GEMM or fused attention, whose FLOPs are
  those its causal tiles execute) ``max(F / R, B / BW)``, every other kernel ``B / BW``, plus
  ``tau`` per kernel. An elementwise kernel PyTorch cannot vectorize (an operand broadcast or
  not contiguous) and ``torch.cat``'s copy move their bytes at ``BW`` times their speed, which
  the memory experiment measures on the same GPU (:data:`SPEEDS`; 1 where not measured), and
  cost the dynamic energy per byte it measures for them (:data:`ENERGIES`).
  Some kinds of kernel run slower, each at a rate and an energy per FLOP of its own
  (:data:`SLOW`), fitted only where the calibration has them, else a step with many of them is
  refused: a GEMM with a dimension not a multiple of 8 (cuBLAS's slower kernels; the reference
  model with a vocabulary one token wider), priced apart where every dimension is even
  (``align2``: kernels that load two elements at a time; the reference model with a vocabulary two
  tokens wider) and at the odd dimension's rate where the fit saw none, attention given a mask
  (every tile, the mask read; the reference model with a sliding window), grouped GEMMs (a mixture
  of experts' experts; the reference model as one). A GEMM on fp32 operands (CUDA cores: PyTorch's
  math attention, where a model hands SDPA fewer key and value heads than query heads) takes the
  rate and dynamic energy per FLOP the pipeline's matmul experiment measured for fp32 on the same
  GPU (:data:`MEASURED`), not fitted; above :data:`LIMITS` of a step's FLOPs and with no such
  measurement, the step is refused;
- the host's time: ``h_f``, ``h_b``, ``h_o`` per operation issued by the forward (Python),
  the backward (autograd's engine) and the optimizer;
- the dynamic energy: ``e_byte B`` plus each kind's energy per FLOP times its FLOPs;
- power: ``P = P_idle + E_dyn / t``, capped: where that would pass the power limit the clocks
  drop until it does not, so ``t = E_dyn / (P_limit - P_idle)``.

Where the calibration holds the attention experiment's measurements
(:data:`~flopmetrics.analysis.steptime_attention.ATTENTION_TABLE`), each fused causal attention
kernel of a head size measured takes the time and dynamic energy measured at its shape instead
(:mod:`flopmetrics.analysis.steptime_attention`).

``t = max(GPU, host, E_dyn / (P_limit - P_idle))`` and ``E = P_idle t + E_dyn``. The fitted
parameters are each bounded by physics (the rates <= the datasheet peak, ``BW`` <= the datasheet
bandwidth, everything else >= 0), fitted by :mod:`flopmetrics.analysis.steptime_fit`. Causal
attention has a rate of its own where steps of the calibration spend more than
:data:`SLOW_LIMIT` of their FLOPs in it; where none do, it is priced as the GEMMs, whose rate it
nears, and no step is refused for it. Attention given dropout (GPT-2's and StarCoder's while
they train; it draws a random number per score) likewise, priced as causal attention where the
calibration has none (:data:`FALLBACK`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .steptime_attention import ATTENTION_TABLE, measured_by, table_of
from .steptime_words import KIND_WORDS

PARAMETERS = (
    "r_flop",  # FLOP/s of matrix products
    "r_unaligned",  # FLOP/s of GEMMs with an odd dimension (cuBLAS's one-element kernels)
    "r_masked",  # FLOP/s of attention given a mask
    "r_attention",  # FLOP/s of the fused causal attention kernel
    "r_fp32",  # FLOP/s of GEMMs on fp32 operands (CUDA cores): measured, not fitted
    "bandwidth",  # B/s
    "tau_s",  # GPU time per kernel
    "host_forward_s",  # host time per operation the forward issues
    "host_backward_s",
    "host_optimizer_s",
    "e_flop_j",  # dynamic J per matrix-product FLOP
    "e_unaligned_j",  # dynamic J per FLOP of a GEMM with an odd dimension
    "e_masked_j",  # dynamic J per FLOP of masked attention
    "e_attention_j",  # dynamic J per FLOP of causal attention
    "e_fp32_j",  # dynamic J per FLOP of an fp32 GEMM: measured, not fitted
    "e_byte_j",  # dynamic J per byte moved
    "r_grouped",  # FLOP/s of grouped GEMMs (experts)
    "e_grouped_j",  # dynamic J per FLOP of a grouped GEMM
    "r_dropout",  # FLOP/s of fused attention given dropout
    "e_dropout_j",  # dynamic J per FLOP of attention given dropout
    "strided_speed",  # bandwidth of PyTorch's generic elementwise kernel / the vectorized one's
    "cat_speed",  # bandwidth of torch.cat's copy / the vectorized elementwise kernel's
    "r_align2",  # FLOP/s of GEMMs with an even dimension not a multiple of 8 (two-element kernels)
    "e_align2_j",  # dynamic J per FLOP of such a GEMM
    "strided_energy",  # dynamic J per byte of the generic elementwise kernel / the vectorized's
    "cat_energy",  # dynamic J per byte of torch.cat's copy / the vectorized elementwise kernel's
)
# the slower kernels' (rate, energy per FLOP) and the FLOPs their share is of
SLOW = {
    "unaligned": ("r_unaligned", "e_unaligned_j", ("gemm",)),
    "align2": ("r_align2", "e_align2_j", ("gemm",)),
    "masked": ("r_masked", "e_masked_j", ("gemm", "attention")),
    "attention": ("r_attention", "e_attention_j", ("gemm", "attention")),
    "fp32": ("r_fp32", "e_fp32_j", ("gemm", "attention")),
    "grouped": ("r_grouped", "e_grouped_j", ("gemm",)),
    "dropout": ("r_dropout", "e_dropout_j", ("gemm", "attention")),
}
# where the fit saw none of a kind, the rate and energy it is priced at (else the GEMMs')
FALLBACK = {"dropout": "attention", "align2": "unaligned"}
# kinds whose rate and energy are measured apart (the fp32 matrix product of the pipeline's
# matmul experiment), never fitted: the reference model has no fp32 GEMMs in a 16-bit step
MEASURED = ("fp32",)
# the speed of each kind of memory-bound kernel whose bytes move slower than the vectorized
# elementwise kernel's (the operation stream's flag, the memory experiment's kernel): measured by
# the memory experiment on the same GPU, never fitted (every step has them in the same share)
SPEEDS = {"strided": "strided_speed", "cat": "cat_speed"}
# and the dynamic energy per byte of each, over the vectorized kernel's: measured alike (a
# slower kernel keeps the GPU busy longer for the same bytes: 2.5x and 2.8x on an H200 in bf16)
ENERGIES = {"strided": "strided_energy", "cat": "cat_energy"}
HELD = (*SPEEDS.values(), *ENERGIES.values())  # measured, never fitted
FITTED = tuple(
    k for k in PARAMETERS if k not in {p for m in MEASURED for p in SLOW[m][:2]} and k not in HELD
)
PASSES = ("forward", "forward_backward", "train_step")  # measured directly, never derived
BOUNDS = ("gpu", "host", "power")  # what bounds a step's time
# each issuing phase of the operation stream, and the host cost it is charged
HOSTS = (("f", "forward"), ("b", "backward"), ("o", "optimizer"))
LEVEL = 0.95
SLOW_LIMIT = 0.05  # share of FLOPs in a slower kind of kernel that needs its own rate
# an fp32 FLOP takes the time of about 16 on tensor cores (the H100's and H200's datasheets)
LIMITS = {"fp32": SLOW_LIMIT / 16}
# kinds priced as the fast kernels (or their FALLBACK) where the fit saw none, not refused:
# within 2x of their rate
PRICED_AS_FAST = ("attention", "dropout")


def filled(p: dict) -> dict:
    """``p`` (a fit, or a table row, NaN where an older table lacks a parameter) with a slower
    kind priced as the fast kernels where the fit saw none (NaN), and a kind of memory-bound
    kernel at the vectorized kernels' bandwidth where none was measured."""
    out = dict.fromkeys(PARAMETERS, math.nan) | p
    for kind in sorted(SLOW, key=lambda k: k in FALLBACK):  # what a fallback is priced at first
        rate, energy, _ = SLOW[kind]
        fast = SLOW[FALLBACK[kind]][:2] if kind in FALLBACK else ("r_flop", "e_flop_j")
        for k, f in zip((rate, energy), fast, strict=True):  # one not measured: refused above
            out[k] = out[k] if math.isfinite(out.get(k, math.nan)) else out[f]  # its limit
    for k in HELD:  # not measured: as the vectorized kernel
        out[k] = out[k] if math.isfinite(out.get(k, math.nan)) else 1.0
    return out


def kernel_kinds(ops: dict) -> dict:
    """Each slower kind's mask over the kernels (an older stream has no ``masked``, ``fp32``
    or ``align2``): attention is every kernel of the attention class not given a mask; an
    unaligned GEMM is ``align2`` where its dimensions are all even, else ``unaligned``."""
    none = np.zeros(len(ops["cls"]), bool)
    fp32 = ops.get("fp32", none)  # a kernel of one kind only: fp32 first (the slowest)
    masked = ops.get("masked", none) & ~fp32
    dropout = ops.get("dropout", none) & ~masked & ~fp32
    attention = (ops["cls"] == "attention") & ~masked & ~fp32 & ~dropout
    align2 = ops.get("align2", none) & ~fp32
    unaligned = ops.get("unaligned", none) & ~fp32 & ~align2
    grouped = ops.get("grouped", none)  # never fp32: PyTorch's grouped GEMM takes bf16 only
    kinds = {"unaligned": unaligned, "align2": align2, "masked": masked, "attention": attention}
    return {**kinds, "fp32": fp32, "grouped": grouped, "dropout": dropout}


def kernel_times(p: dict, ops: dict) -> np.ndarray:
    """Each kernel's GPU time at full clock, without the per-kernel ``tau``: matrix products
    ``max(F / R, B / BW)`` (a slower kind at its own rate), every other kernel ``B / BW``, its
    kind's speed times that where it is strided or a ``cat`` (:data:`SPEEDS`)."""
    p = filled(p)
    names, kind = rate_kinds(ops)
    rate = np.where(products(ops), np.array([p[n] for n in names])[kind], np.inf)
    bandwidth = p["bandwidth"] * memory_factors(p, SPEEDS)[memory_kinds(ops)]
    times = np.maximum(ops["flops"] / rate, ops["bytes"] / bandwidth)
    seconds, _ = measured_by(p, ops)
    return np.where(np.isfinite(seconds), seconds, times)


def products(ops: dict) -> np.ndarray:
    """Which kernels are matrix products (GEMM or fused attention)."""
    return (ops["cls"] == "gemm") | (ops["cls"] == "attention")


def rate_kinds(ops: dict) -> tuple[list[str], np.ndarray]:
    """The rates a matrix product may run at (``r_flop`` first, then each slower kind's) and
    each kernel's index into them: its kind's, the later of :func:`kernel_kinds` where two."""
    kinds = kernel_kinds(ops)
    index = np.zeros(len(ops["cls"]), int)
    for i, where in enumerate(kinds.values(), 1):
        index = np.where(where, i, index)
    return ["r_flop", *(SLOW[k][0] for k in kinds)], index


def memory_kinds(ops: dict) -> np.ndarray:
    """Each kernel's kind of memory-bound kernel: 0 the vectorized kernel's (and every matrix
    product), else 1 + the index of its flag in :data:`SPEEDS` (the later where two; an older
    stream has no strided flag)."""
    none, product = np.zeros(len(ops["cls"]), bool), products(ops)
    index = np.zeros(len(product), int)
    for i, flag in enumerate(SPEEDS, 1):
        index = np.where(ops.get(flag, none) & ~product, i, index)
    return index


def memory_factors(p: dict, names: dict) -> np.ndarray:
    """Each kind of :func:`memory_kinds`' factor ``p[names[flag]]`` (:data:`SPEEDS`,
    :data:`ENERGIES`), 1 for the vectorized kernel's."""
    return np.array([1.0, *(p[names[f]] for f in SPEEDS)])


def gpu_time(p: dict, ops: dict) -> float:
    """The GPU's time at full clock: every kernel's, plus ``tau`` per kernel."""
    return float(kernel_times(p, ops).sum()) + len(ops["cls"]) * p["tau_s"]


def host_time(p: dict, ops: dict) -> float:
    """The host's time: its cost per operation of each issuing phase."""
    return sum(float(np.sum(ops["phase"] == ph)) * p[f"host_{name}_s"] for ph, name in HOSTS)


def dynamic_energy(p: dict, ops: dict) -> float:
    """The dynamic energy: per byte moved (a slower kind of memory-bound kernel's at its own,
    :data:`ENERGIES`), and per FLOP of each kind of matrix product."""
    p, flops = filled(p), ops["flops"]
    _, joules = measured_by(p, ops)
    priced = np.isfinite(joules)  # measured whole, its bytes' energy with it
    product = products(ops) & ~priced
    fast = product.copy()
    moved = ops["bytes"] * memory_factors(p, ENERGIES)[memory_kinds(ops)]
    dynamic = p["e_byte_j"] * moved[~priced].sum() + joules[priced].sum()
    for kind, where in kernel_kinds(ops).items():
        dynamic += p[SLOW[kind][1]] * flops[product & where].sum()
        fast &= ~where
    return dynamic + p["e_flop_j"] * flops[fast].sum()


def step(p: dict, ops: dict, idle_w: float, limit_w: float) -> tuple[float, float, str]:
    """(energy J, time s, what bound it: ``gpu``, ``host`` or ``power``) of one iteration."""
    p = filled(p)
    dynamic = dynamic_energy(p, ops)
    capped = dynamic / max(limit_w - idle_w, 1e-9)
    t, bound = max((gpu_time(p, ops), "gpu"), (host_time(p, ops), "host"), (capped, "power"))
    return idle_w * t + dynamic, t, bound


def slow_shares(ops: dict, table: str = "") -> dict:
    """Each slower kind's share of a step's FLOPs of :data:`SLOW`'s classes in its kernels, but
    the attention kernels an attention table ``table`` prices (measured, not fitted)."""
    out = {}
    seconds, _ = measured_by({ATTENTION_TABLE: table}, ops)
    for kind, where in kernel_kinds(ops).items():
        total = float(ops["flops"][np.isin(ops["cls"], SLOW[kind][2])].sum())
        mine = where & ~np.isfinite(seconds)
        out[kind] = float(ops["flops"][mine].sum()) / total if total > 0 else 0.0
    return out


def kind_of(ops: dict, table: str = "") -> str:
    """The slower kind a step spends more than :data:`SLOW_LIMIT` of its FLOPs in (of the
    largest share, one not :data:`PRICED_AS_FAST` first: those are the slowest), or ``""``;
    the attention kernels an attention table ``table`` prices are not of a slower kind."""
    shares = slow_shares(ops, table)
    return max(over_limit(shares), key=lambda k: (k not in PRICED_AS_FAST, shares[k]), default="")


def over_limit(shares: dict) -> list[str]:
    """The slower kinds whose share of a step's FLOPs passes their limit (:data:`LIMITS`, else
    :data:`SLOW_LIMIT`)."""
    return [k for k in SLOW if shares[k] > LIMITS.get(k, SLOW_LIMIT)]


def _has_rate(calibration: dict, kind: str) -> bool:
    """Whether the calibration has a rate for a slower kind: its own, else its fallback's."""
    kinds = (kind, FALLBACK[kind]) if kind in FALLBACK else (kind,)
    return any(math.isfinite(calibration.get(SLOW[k][0], math.nan)) for k in kinds)


def predict(calibration: dict, ops: dict) -> dict:
    """Energy per step with its 95 % interval: the largest of the fit's residual scatter, the
    95th percentile of its left-out misses (a configuration outside the fit's sizes is an
    extrapolation like those; a step of a slower kind takes the misses of such steps where
    larger) and that of its misses on other models (``heldout_q95``, where measured; a step
    takes the misses of those bound like it, ``heldout_q95_<bound>``, where larger).
    ``{"status": why}`` where a step spends more than its limit (:func:`over_limit`) of its
    FLOPs in a slower kind the calibration has no rate for."""
    shares = slow_shares(ops, table_of(calibration))
    kinds = over_limit(shares)
    for k in (k for k in kinds if k not in PRICED_AS_FAST):
        if not _has_rate(calibration, k):
            why = "no fp32 matrix product measured" if k in MEASURED else "no such rows"
            return {
                "status": f"{100 * shares[k]:.1f} % of its FLOPs are in {KIND_WORDS[k][0]}, and "
                f"the step-time calibration had {why} to take their rate from"
            }
    e, t, bound = step(calibration, ops, calibration["idle_w"], calibration["limit_w"])
    z = float(stats.norm.ppf(0.5 + LEVEL / 2))
    bounds = [calibration["left_out_q95"], calibration.get("heldout_q95", math.nan)]
    bounds += [calibration.get(f"left_out_q95_{k}", math.nan) for k in kinds]
    bounds.append(calibration.get(f"heldout_q95_{bound}", math.nan))
    half = float(np.nanmax([z * calibration["resid_sd"], *bounds]))
    return {
        "energy_j": e,
        "energy_j_lo": e * (1 - half),
        "energy_j_hi": e * (1 + half),
        "time_s": t,
        "bound": bound,
        "slow": kinds,
    }
