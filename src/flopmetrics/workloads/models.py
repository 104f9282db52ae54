"""Build Hugging Face causal LMs from a config (preset, inline mapping or config.json path),
with random weights: nothing is downloaded."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml


class ModelConfigError(ValueError):
    pass


@lru_cache(maxsize=1)
def presets() -> dict[str, dict]:
    return yaml.safe_load(resources.files("flopmetrics").joinpath("data/models.yaml").read_text())


def resolve(spec) -> tuple[str, dict]:
    """``spec`` is a preset name, a path to a config.json, or a mapping of config fields.

    Returns ``(name, fields)``; raises :class:`ModelConfigError` naming what is wrong.
    """
    if isinstance(spec, dict):
        fields = dict(spec)
        name = str(fields.pop("name", fields.get("model_type", "custom")))
        if "model_type" not in fields:
            raise ModelConfigError(f"inline model config {name!r} needs a 'model_type' (e.g. llama)")
        return name, fields
    if not isinstance(spec, str):
        raise ModelConfigError(f"model must be a preset name, a config.json path or a mapping, got {spec!r}")
    if spec in presets():
        return spec, dict(presets()[spec])
    path = Path(spec)
    if path.suffix == ".json" or path.exists():
        try:
            fields = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelConfigError(f"model config file {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise ModelConfigError(f"model config file {path} does not parse: line {err.lineno}: {err.msg}") from None
        if not isinstance(fields, dict) or "model_type" not in fields:
            raise ModelConfigError(f"model config file {path} has no 'model_type'")
        return path.stem if path.name != "config.json" else path.parent.name, fields
    raise ModelConfigError(f"unknown model preset {spec!r}; presets: {sorted(presets())}, or give a config.json path")


def build_causal_lm(fields: dict, attn_implementation: str = "sdpa", device: str = "cpu"):
    """A randomly initialised ``AutoModelForCausalLM`` from config fields, in fp32, created
    directly on ``device`` (initialising 1B parameters on a GPU takes a fraction of the CPU time)."""
    try:
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError as err:
        raise ModelConfigError("transformers is not installed (pip install transformers)") from err
    fields = dict(fields)
    model_type = fields.pop("model_type")
    config = AutoConfig.for_model(model_type, **fields)
    import torch

    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)


def transformer_shape(fields: dict) -> dict:
    """The sizes the analytic count needs, with HF defaults where a field is absent."""
    h = fields["hidden_size"]
    heads = fields["num_attention_heads"]
    return {
        "hidden": h,
        "intermediate": fields["intermediate_size"],
        "layers": fields["num_hidden_layers"],
        "heads": heads,
        "kv_heads": fields.get("num_key_value_heads", heads),
        "head_dim": fields.get("head_dim") or h // heads,
        "vocab": fields["vocab_size"],
    }
