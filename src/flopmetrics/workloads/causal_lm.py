"""A Hugging Face causal LM (random weights) on random tokens: the LLM workload."""

from __future__ import annotations

import contextlib
import copy

import torch

from ..contracts.errors import ModelConfigError
from ..flops import transformer
from ..flops.models import build_causal_lm, hf_config, transformer_shape
from . import graphs
from .base import TrainableWorkload


class CausalLMWorkload(TrainableWorkload):
    """A Hugging Face causal LM on random tokens; loss = next-token cross-entropy."""

    kind = "llm"

    def __init__(
        self,
        device,
        precision,
        model_name,
        model_fields,
        batch,
        seq_len,
        attn_implementation="sdpa",
        seed=0,
        passes=None,
        attention_convention="full",
    ):
        super().__init__(device, precision, passes)
        torch.manual_seed(seed)
        self.model_name, self.batch, self.seq_len = model_name, batch, seq_len
        try:  # the closed form is Llama-style; other architectures are counted only
            self.shape = transformer_shape(model_fields)
        except ModelConfigError:
            self.shape = None
        self.attn_implementation = attn_implementation
        self.attention_convention = attention_convention
        model = build_causal_lm(model_fields, attn_implementation, device)
        if not self.mixed:
            model = model.to(dtype=self.precision.dtype)  # pure low precision, like the thesis
        self.model = model.to(device)
        self.model.train()
        self.model_fields, self.seed = model_fields, seed
        self._tokens(batch, seq_len)
        self._build_optimizer()

    def _tokens(self, batch, seq_len):
        gen = torch.Generator().manual_seed(self.seed)
        vocab = hf_config(self.model_fields).vocab_size
        self.batch, self.seq_len = batch, seq_len
        self.input_ids = torch.randint(0, vocab, (batch, seq_len), generator=gen).to(self.device)

    def resized(self, batch, seq_len) -> "CausalLMWorkload":
        """This model at another batch size and sequence length, as a fresh build would be (same
        seed: same starting weights, same tokens' generator; a new optimizer with no state), without
        building it again: a job that measures several sizes builds the model once."""
        out = copy.copy(self)
        out._tokens(batch, seq_len)
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
            "batch_size": self.batch,
            "seq_len": self.seq_len,
            "tokens": self.batch * self.seq_len,
            "attn_implementation": self.attn_implementation,
            "parameters": self.parameters,
        }

    def analytic(self):
        if self.shape is None:
            return {}
        table = transformer.pass_flops(self.shape, self.batch, self.seq_len, self.parameters)
        return {
            p: {"flops_analytic": v["total"], "flops_analytic_attention": v["attention"]}
            for p, v in table.items()
        }
