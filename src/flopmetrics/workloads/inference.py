"""Serving a Hugging Face causal LM (random weights) from a static KV cache: the inference workload.

Two passes, each one iteration of what a server does:

``prefill``  the prompts (``batch_size x prompt_len`` tokens) through the model, their keys and
             values written into the cache, the logits of the last position only
``decode``   one new token for every sequence, attending over the cache at ``context_len``
             positions (``prompt_len + output_len // 2``: the middle of the output, so the
             mean over the output's contexts for a cost linear in the context)

The cache is static (``max_cache_len = prompt_len + output_len``), as compiled and graph-replayed
serving uses: every iteration of a pass writes the same slots with the same values, so each
window does the same work and needs no restore. Attention (transformers' SDPA call) reads only
the positions filled: the cache's first ``prompt_len`` slots, causal, for prefill, its first
``context_len + 1`` for decode, with grouped-query heads as they are stored (no copies), as a
serving kernel does; the same call eager and replayed from a CUDA graph. Weights and tokens are
random: the work, not the text, is what is measured.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from dataclasses import dataclass

import pandas as pd
import torch

from ..contracts.errors import ModelConfigError
from ..contracts.schema import defaults
from ..contracts.vocabulary import SERVING_PASSES
from ..energy import datasheet
from ..flops.counted import count_flops
from ..flops.models import build_causal_lm, hf_config, resolve
from .base import Workload, release

SERVED = "flopmetrics_served"  # the attention implementation a serving workload registers
_ATTENDED = contextvars.ContextVar("flopmetrics_attended")  # cache positions the call attends


@dataclass(frozen=True)
class InferenceConfig:
    """What an inference workload is built from (config ``inference``; defaults: the schema)."""

    name: str
    fields: dict
    batch_size: int
    prompt_len: int
    output_len: int
    passes: tuple[str, ...]

    @classmethod
    def of(cls, workload: dict) -> InferenceConfig:
        name, fields = resolve(workload["model"])
        options = {**defaults("inference"), **workload}
        return cls(
            name,
            fields,
            int(workload["batch_size"]),
            int(workload["prompt_len"]),
            int(workload["output_len"]),
            tuple(options["passes"]),
        )

    @property
    def context_len(self) -> int:
        """The positions a decode step attends to: the middle of the output."""
        return self.prompt_len + self.output_len // 2


def build(device: str, precision: str, workload: dict, seed: int, previous=None):
    """The inference workload of one configuration (built anew: a cache is sized for it)."""
    del previous  # not reused: a model's cache is sized for its configuration
    release()
    return InferenceWorkload(device, precision, InferenceConfig.of(workload), seed)


class InferenceWorkload(Workload):
    """A causal LM in eval mode, a static KV cache, random prompt and next tokens."""

    passes = SERVING_PASSES

    def __init__(self, device: str, precision: str, config: InferenceConfig, seed: int = 0):
        super().__init__(device, precision)
        from transformers import StaticCache  # late: seconds of import; only this build needs it

        torch.manual_seed(seed)
        self.config, self.model_name = config, config.name
        self.passes = tuple(p for p in SERVING_PASSES if p in config.passes)
        model = build_causal_lm(config.fields, "sdpa", device)
        model.set_attn_implementation(served_attention())
        if not self.mixed:
            model = model.to(dtype=self.precision.dtype)
        self.model = model.to(device).eval().requires_grad_(False)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.cache_len = config.prompt_len + config.output_len
        self.cache = StaticCache(config=self.model.config, max_cache_len=self.cache_len)
        _check_served(config.name, self.model.config, self.cache)
        # transformers 5.24 renamed the model's cache argument (the old name still works, warned)
        forward = inspect.signature(type(self.model).forward).parameters
        self.cache_argument = "cache" if "cache" in forward else "past_key_values"
        self._inputs(seed)
        self._fill()

    def _inputs(self, seed: int) -> None:
        c, b = self.config, self.config.batch_size
        gen = torch.Generator().manual_seed(seed)
        vocab = hf_config(c.fields).vocab_size
        self.prompt_ids = torch.randint(0, vocab, (b, c.prompt_len), generator=gen).to(self.device)
        self.next_ids = torch.randint(0, vocab, (b, 1), generator=gen).to(self.device)

    def _fill(self) -> None:
        """The cache as a server's is at ``context_len``: the prompt, then the output so far
        (on the meta device, which holds no values, a count needs only its shapes)."""
        if torch.device(self.device).type == "meta":
            return
        with torch.no_grad(), self.context():
            self._forward(self.prompt_ids, 0)
            for position in range(self.config.prompt_len, self.config.context_len):
                self._forward(self.next_ids, position)

    def _forward(self, ids, start: int):
        """The model on ``ids`` at positions ``start...``, their keys and values written there,
        attending to the cache's positions up to the last of them."""
        for layer in self.cache.layers:  # where a static layer writes next: its own counter
            if torch.is_tensor(getattr(layer, "cumulative_length", None)):
                layer.cumulative_length.fill_(start)
        end = start + ids.shape[1]
        positions = torch.arange(start, end, device=self.device)[None, :]
        attended = _ATTENDED.set(end)  # a Python int: a graph captures it as a fixed slice
        try:
            return self.model(
                input_ids=ids,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{self.cache_argument: self.cache},
            ).logits
        finally:
            _ATTENDED.reset(attended)

    def steps(self):
        def prefill():
            with torch.no_grad(), self.context():
                return self._forward(self.prompt_ids, 0)

        def decode():
            with torch.no_grad(), self.context():
                return self._forward(self.next_ids, self.config.context_len)

        return {"prefill": prefill, "decode": decode}

    def counted(self):
        steps = self.steps()
        return {name: count_flops(steps[name]) for name in self.passes}

    def tokens(self, name: str) -> int:
        """Tokens one iteration of pass ``name`` processes (prefill) or produces (decode)."""
        b = self.config.batch_size
        return b * self.config.prompt_len if name == "prefill" else b

    def attended(self, name: str) -> float:
        """The share of the score matrix the counter books (every query against every key read)
        that is attended: a causal prompt's ``(p + 1) / 2p``; all of a decode step's."""
        p = self.config.prompt_len
        return (p + 1) / (2 * p) if name == "prefill" else 1.0

    def weight_bytes(self) -> int:
        """Bytes of the weights one pass reads: all but an input embedding of its own (a lookup
        reads only the tokens' rows; tied to the output layer, the matrix is read there)."""
        embedding = self.model.get_input_embeddings().weight
        output = self.model.get_output_embeddings()
        tied = output is not None and output.weight is embedding  # one Parameter (meta too)
        total = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return total if tied else total - embedding.numel() * embedding.element_size()

    def kv_bytes_per_position(self) -> int:
        """Bytes of keys and values one position of one sequence holds, over all layers."""
        tensors = [t for layer in self.cache.layers for t in (layer.keys, layer.values)]
        total = sum(t.numel() * t.element_size() for t in tensors)
        return total // (self.config.batch_size * self.cache_len)

    def describe(self):
        c = self.config
        return {
            "model": self.model_name,
            "batch_size": c.batch_size,
            "prompt_len": c.prompt_len,
            "output_len": c.output_len,
            "cache_len": self.cache_len,
            "parameters": self.parameters,
        }

    def headline_flops(self, counted: dict, analytic: dict) -> dict:
        """Per pass: FLOPs of the scores attended (a causal prompt's upper triangle, which the
        counter books, left out), and where they came from."""
        source = "FlopCounterMode (causal attention: the scores attended)"
        return {
            p: (round(c.total - c.attention * (1 - self.attended(p))), source)
            for p, c in counted.items()
        }

    def finish_rows(self, rows):
        return per_token_columns(self, rows)


def per_token_columns(workload: InferenceWorkload, rows: pd.DataFrame) -> pd.DataFrame:
    """A serving row's per-token columns: J per token (total and dynamic), tokens/s, time per
    output token (decode), FLOPs and bytes per token (weights plus the KV cache of the positions
    attended), and the memory-bandwidth bound: the time the bytes take at the datasheet's HBM
    bandwidth, and the fraction of it the pass reached (gated <= 1)."""
    rows = rows.copy()
    bandwidth = datasheet.job_bandwidth(rows)
    c, weights = workload.config, workload.weight_bytes()
    per_position = workload.kv_bytes_per_position()
    tokens = rows["pass"].map(workload.tokens)
    positions = rows["pass"].map({"prefill": c.prompt_len, "decode": c.context_len + 1})
    moved = weights + c.batch_size * positions * per_position
    time = rows["time_per_iter_s"]
    rows["context_len"] = rows["pass"].map({"prefill": c.prompt_len, "decode": c.context_len})
    rows["tokens"] = tokens
    rows["j_per_token"] = rows["energy_j_per_iter"] / tokens
    rows["j_per_token_sem"] = rows["energy_j_per_iter_sem"] / tokens
    rows["dynamic_j_per_token"] = rows["dynamic_energy_j_per_iter"] / tokens
    rows["tokens_per_s"] = tokens / time
    rows["time_per_output_token_s"] = time.where(rows["pass"].eq("decode"))
    rows["flops_per_token"] = rows["flops"] / tokens
    rows["bytes_per_token"] = moved / tokens
    rows["hbm_bytes_per_s"] = bandwidth
    rows["bandwidth_bound_s"] = moved / bandwidth
    rows["bandwidth_fraction"] = rows["bandwidth_bound_s"] / time
    return rows


def _check_served(name: str, hf: object, cache) -> None:
    """Refuse what this workload would serve wrongly: its attention reads a plain cache's first
    positions with standard softmax."""
    sliding = [i for i, layer in enumerate(cache.layers) if getattr(layer, "is_sliding", False)]
    if sliding:
        raise ModelConfigError(
            f"model {name!r}: layers {sliding} attend over a sliding window; the inference "
            "experiment serves full attention only (set the config's sliding_window to null)"
        )
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if getattr(hf, key, None):
            raise ModelConfigError(
                f"model {name!r}: {key} is set; the inference experiment serves standard "
                "softmax attention only"
            )


@functools.cache
def served_attention() -> str:
    """Register (once per process) and name the attention a serving workload runs:
    transformers' SDPA call on the cache's positions attended only, with no mask (causal where
    several queries come, as a prompt's), so grouped-query heads go to the kernel as stored.
    Registered without a mask function, transformers builds no mask for it."""
    # late: transformers takes seconds to import; only a serving workload's build needs these
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def attend(module, query, key, value, attention_mask, **kwargs):
        end = _ATTENDED.get(None)
        if end is None:  # called outside a serving pass (no cache): SDPA as transformers calls it
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        key, value = key[:, :, :end], value[:, :, :end]
        return sdpa_attention_forward(module, query, key, value, None, **kwargs)

    AttentionInterface.register(SERVED, attend)
    return SERVED
