"""A Hugging Face causal LM (random weights) on random tokens: the LLM workload."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass

import torch

from ..contracts.errors import ModelConfigError
from ..contracts.schema import defaults
from ..flops import transformer
from ..flops.models import build_causal_lm, hf_config, resolve, transformer_shape
from . import graphs
from .base import TrainableWorkload, release


@dataclass(frozen=True)
class LMConfig:
    """What a causal LM workload is built from: the model (its name and transformers config
    fields), the batch and sequence length, the passes measured, the attention implementation
    and how attention FLOPs enter the headline count (config ``llm``; defaults: the schema)."""

    name: str
    fields: dict
    batch_size: int
    seq_len: int
    passes: tuple[str, ...]
    attn_implementation: str
    attention_flops: str

    @classmethod
    def of(cls, workload: dict) -> LMConfig:
        """From a job's workload (``model``: a preset, config.json path or inline mapping; the
        options the workload leaves out take the schema's ``llm`` defaults)."""
        name, fields = resolve(workload["model"])
        options = {**defaults("llm"), **workload}
        return cls(
            name,
            fields,
            int(workload["batch_size"]),
            int(workload["seq_len"]),
            tuple(options["passes"]),
            options["attn_implementation"],
            options["attention_flops"],
        )

    def same_model(self, other: LMConfig) -> bool:
        """Whether ``other`` builds the same model (it may differ in batch and length)."""
        resized = {"batch_size": self.batch_size, "seq_len": self.seq_len}
        return dataclasses.replace(other, **resized) == self


def build(device: str, precision: str, workload: dict, seed: int, previous=None):
    """The causal LM of one configuration; ``previous`` (the workload this job built before) is
    resized rather than built again where only batch size and sequence length differ."""
    config = LMConfig.of(workload)
    if reusable(CausalLMWorkload, previous, device, precision, config, seed):
        return previous.resized(config.batch_size, config.seq_len)
    previous = None  # the last reference (the job hands it over): freed before the next build
    release()
    return CausalLMWorkload(device, precision, config, seed)


def reusable(
    kind: type, previous, device: str, precision: str, config: LMConfig, seed: int
) -> bool:
    """Whether ``previous`` (the workload a job built before) can be resized into ``config``'s:
    a workload of exactly the type ``kind`` (one worker serves every experiment of a target: a
    subclass measures other passes), on the same device, precision and seed, of the same model."""
    return (
        type(previous) is kind
        and (previous.device, previous.precision_mode, previous.seed) == (device, precision, seed)
        and config.same_model(previous.config)
    )


class CausalLMWorkload(TrainableWorkload):
    """A Hugging Face causal LM on random tokens; loss = next-token cross-entropy."""

    def __init__(self, device: str, precision: str, config: LMConfig, seed: int = 0):
        super().__init__(device, precision, config.passes)
        torch.manual_seed(seed)
        self.config, self.model_name = config, config.name
        try:  # the closed form is Llama-style; other architectures are counted only
            self.shape = transformer_shape(config.fields)
        except ModelConfigError:
            self.shape = None
        self.attn_implementation = config.attn_implementation
        self.attention_flops = config.attention_flops
        model = build_causal_lm(config.fields, config.attn_implementation, device)
        if not self.mixed:
            model = model.to(dtype=self.precision.dtype)  # pure low precision, like the thesis
        self.model = model.to(device)
        self.model.train()
        self.model_fields, self.seed = config.fields, seed
        self._tokens(config.batch_size, config.seq_len)
        self._build_optimizer()

    def _tokens(self, batch_size: int, seq_len: int) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        vocab = hf_config(self.model_fields).vocab_size
        self.batch_size, self.seq_len = batch_size, seq_len
        self.config = dataclasses.replace(self.config, batch_size=batch_size, seq_len=seq_len)
        shape = (batch_size, seq_len)
        self.input_ids = torch.randint(0, vocab, shape, generator=gen).to(self.device)

    def resized(self, batch_size: int, seq_len: int) -> CausalLMWorkload:
        """This model at another batch size and sequence length, as a fresh build would be (same
        seed: same starting weights, same tokens' generator; a new optimizer with no state), without
        building it again: a job that measures several sizes builds the model once."""
        out = copy.copy(self)
        out._tokens(batch_size, seq_len)
        out.restore()
        out._new_optimizer()
        return out

    @contextlib.contextmanager
    def replayed(self, name, step):
        # captured with the attention call eager makes (graphs.unmasked_sdpa), not a mask
        with graphs.unmasked_sdpa(self.model), super().replayed(name, step) as replay:
            yield replay

    def loss(self):
        return self.model(input_ids=self.input_ids, labels=self.input_ids).loss

    def inference(self):
        return self.model(input_ids=self.input_ids).logits

    def describe(self):
        return {
            "model": self.model_name,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "tokens": self.batch_size * self.seq_len,
            "attn_implementation": self.attn_implementation,
            "parameters": self.parameters,
        }

    def analytic(self):
        if self.shape is None:
            return {}
        table = transformer.pass_flops(self.shape, self.batch_size, self.seq_len, self.parameters)
        return {
            p: {"flops_analytic": v["total"], "flops_analytic_attention": v["attention"]}
            for p, v in table.items()
        }
