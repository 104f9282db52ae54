"""Build Hugging Face causal LMs from a config (preset, inline mapping or config.json path),
with random weights: nothing is downloaded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

import yaml

from ..contracts.errors import ModelConfigError
from .meta import ExpertsInBf16Only, on_meta, refused


@lru_cache(maxsize=1)
def presets() -> dict[str, dict]:
    return yaml.safe_load(resources.files("flopmetrics").joinpath("data/models.yaml").read_text())


# a model's name is a path component ({model} in results/raw/llm/...): a safe file name
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve(spec) -> tuple[str, dict]:
    """``spec`` is a preset name, a path to a ``config.json`` (or to a folder holding one), or a
    mapping: ``{name, model_type, <config fields>}`` inline, or ``{name, config: <path>}``.

    The name of a path spec is its folder's name for ``config.json`` (the Hugging Face layout),
    else the file's stem; every name must be a safe file name (letters, digits, ``_.-``, not
    starting with ``.``). Returns ``(name, fields)``; raises :class:`ModelConfigError` naming
    what is wrong.
    """
    if isinstance(spec, dict):
        return _resolve_mapping(spec)
    if not isinstance(spec, str) or not spec:
        raise ModelConfigError(
            f"model must be a preset name, a config.json path or a mapping, got {spec!r}"
        )
    if spec in presets():
        return spec, dict(presets()[spec])
    path = Path(spec)
    if path.suffix == ".json" or path.exists() or "/" in spec:
        return _resolve_path(path, spec)
    raise ModelConfigError(
        f"unknown model preset {spec!r}; presets: {sorted(presets())}, or give a config.json path"
    )


def _resolve_mapping(spec: dict) -> tuple[str, dict]:
    """``{name, model_type, <config fields>}`` inline, or ``{name, config: <path>}``."""
    fields = dict(spec)
    name = fields.pop("name", None)
    if name is None:
        raise ModelConfigError(f"an inline model needs a 'name' (a safe file name), got {spec!r}")
    if "config" in fields:
        extra = sorted(set(fields) - {"config"})
        if extra:
            raise ModelConfigError(
                f"model {name!r}: give either 'config' (a path) or config fields, not both "
                f"(also got {extra})"
            )
        fields = _read_config(Path(fields["config"]))
    elif "model_type" not in fields:
        raise ModelConfigError(
            f"inline model config {name!r} needs a 'model_type' (e.g. llama) or a 'config' path"
        )
    return _safe_name(str(name), spec), fields


def _resolve_path(path: Path, spec: str) -> tuple[str, dict]:
    """A ``config.json`` path (or a folder holding one), named after its folder or stem."""
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelConfigError(f"model path {path} is a folder without a config.json")
        path = path / "config.json"
    fields = _read_config(path)
    name = path.resolve().parent.name if path.name == "config.json" else path.stem
    return _safe_name(name, spec), fields


def _read_config(path: Path) -> dict:
    try:
        fields = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelConfigError(f"model config file {path} does not exist") from None
    except IsADirectoryError:
        raise ModelConfigError(f"model config {path} is a folder without a config.json") from None
    except json.JSONDecodeError as err:
        raise ModelConfigError(
            f"model config file {path} does not parse: line {err.lineno}: {err.msg}"
        ) from None
    if not isinstance(fields, dict) or "model_type" not in fields:
        raise ModelConfigError(f"model config file {path} has no 'model_type'")
    return fields


def _safe_name(name: str, spec) -> str:
    if not SAFE_NAME.match(name):
        raise ModelConfigError(
            f"model {spec!r} gives the name {name!r}, which is not a safe file name (letters, "
            "digits, '_', '.', "
            "'-', not starting with '.'): name it yourself with {name: <name>, config: <path>}"
        )
    return name


def hf_config(fields: dict):
    """The transformers configuration of ``fields`` (``AutoConfig``): any architecture
    transformers knows; what it rejects raises :class:`ModelConfigError` with its message."""
    try:  # transformers takes seconds to import: only where a model is built or checked
        from transformers import AutoConfig
    except ImportError as err:
        raise ModelConfigError("transformers is not installed (pip install transformers)") from err
    fields = dict(fields)
    model_type = fields.pop("model_type")
    with refused(f"rejects this config (model_type {model_type!r})"):
        return AutoConfig.for_model(model_type, **fields)


@lru_cache(maxsize=32)
def _summary(blob: str) -> dict:
    # late: transformers takes seconds to import, and only model checks and builds need it
    import torch
    from transformers import AutoModelForCausalLM

    fields = json.loads(blob)
    config = hf_config(fields)
    with refused("cannot build a causal LM from this config"), torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {
        "model_type": config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "grouped_experts": _grouped_experts(model, fields),
    }


def _grouped_experts(model, fields: dict) -> bool:
    """Whether the model's experts run as PyTorch's grouped GEMM: a pass of the fp32 model on
    the meta device fails where they do (the grouped GEMM's meta function holds its CUDA
    kernel's checks). Tried only where some weight is stacked (3-D), as experts' are."""
    import torch  # late: as above

    if not any(p.dim() >= 3 for p in model.parameters()):
        return False
    try:
        with on_meta(fields):
            model(input_ids=torch.zeros((1, 4), dtype=torch.long, device="meta"))
    except ExpertsInBf16Only:
        return True
    except ModelConfigError:  # code that cannot run without weights: refused where it runs
        return False
    return False


def precision_refusal(size: dict, precision: str, targets: list[str]) -> str | None:
    """Why a model (its :func:`summary`) cannot be measured in ``precision`` on ``targets``, or
    None: a mixture of experts run as grouped GEMMs takes bf16 only on a GPU."""
    if not size.get("grouped_experts") or precision == "bf16" or set(targets) <= {"cpu"}:
        return None
    return (
        "transformers runs its experts with PyTorch's grouped GEMM, which takes bf16 operands "
        f"only on a GPU: {precision!r} fails there (bf16-mixed keeps fp32 weights); measure it "
        "in bf16, or on the cpu target alone"
    )


def summary(fields: dict) -> dict:
    """Size of the model ``fields`` builds (on the meta device: no memory, no weights):
    ``model_type``, ``parameters``, ``layers``, ``hidden_size``, and whether its experts run
    as grouped GEMMs (``grouped_experts``). Kept on disk (:func:`kept_on_disk`, per version of
    this code): every Snakemake start checks the configured models, and building one costs
    seconds of imports."""
    blob = json.dumps(fields, sort_keys=True)
    code = source_digest("models.py", "meta.py")
    return kept_on_disk("models", [blob, code], lambda: _summary(blob))


def kept_on_disk(kind: str, key: list, compute):
    """``compute()``'s JSON-able result, kept under :func:`cache_dir` per ``key`` and the
    transformers and torch versions (computed again where none is kept or it cannot be read)."""
    path = _cached(kind, key)
    if path is not None and path.exists():
        with contextlib.suppress(OSError, ValueError):
            return json.loads(path.read_text())
    value = compute()
    if path is not None:
        with contextlib.suppress(OSError):
            _write_atomically(path, json.dumps(value))
    return value


def source_digest(*names: str) -> str:
    """A digest of these files of the flops package: a value kept on disk and computed by
    their code is stale once they are edited."""
    text = b"".join((Path(__file__).parent / name).read_bytes() for name in names)
    return hashlib.sha256(text).hexdigest()[:16]


def cache_dir() -> Path:
    """``$FLOPMETRICS_CACHE_DIR``, else ``$XDG_CACHE_HOME/flopmetrics``, else
    ``~/.cache/flopmetrics``: derived facts only (a model's size, its FLOP counts), safe to
    delete."""
    if os.environ.get("FLOPMETRICS_CACHE_DIR"):
        return Path(os.environ["FLOPMETRICS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flopmetrics"


def _cached(kind: str, key: list) -> Path | None:
    """Where ``kind``'s value for ``key`` is kept (None where the versions are unknown)."""
    try:
        versions = [metadata.version("transformers"), metadata.version("torch")]
    except metadata.PackageNotFoundError:
        return None
    digest = hashlib.sha256(json.dumps([*key, versions]).encode()).hexdigest()[:32]
    return cache_dir() / kind / f"{digest}.json"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def attention_refusal(fields: dict, implementation: str) -> str | None:
    """Why transformers will not build ``fields`` with the attention ``implementation``
    (``sdpa``, ``eager``, ...), or ``None`` where it will. Kept on disk, like
    :func:`summary`."""
    blob = json.dumps(fields, sort_keys=True)
    kept = kept_on_disk("attention", [blob, implementation], lambda: _refusal(blob, implementation))
    return kept["refusal"]


def _refusal(blob: str, implementation: str) -> dict:
    try:
        build_causal_lm(json.loads(blob), implementation, "meta")
    except ModelConfigError:  # a config that builds with no attention at all: not a refusal
        raise
    except ValueError as err:  # transformers: this architecture has no such implementation
        return {"refusal": " ".join(str(err).split(". ")[0].split())[:200]}
    return {"refusal": None}


def counting_attention(fields: dict) -> str:
    """The attention implementation a count or an operation stream of ``fields`` builds with:
    ``sdpa`` where the architecture has it, else ``eager`` (BLOOM, for one). Both book the full
    score matrix, so the counted FLOPs follow one convention (:mod:`flopmetrics.flops.counted`)."""
    return "sdpa" if attention_refusal(fields, "sdpa") is None else "eager"


def build_causal_lm(fields: dict, attn_implementation: str = "sdpa", device: str = "cpu"):
    """A randomly initialised ``AutoModelForCausalLM`` from config fields, in fp32, created
    directly on ``device`` (initialising 1B parameters on a GPU takes a fraction of the CPU
    time)."""
    # late: transformers takes seconds to import, and only model checks and builds need it
    import torch
    from transformers import AutoModelForCausalLM

    config = hf_config(fields)
    with refused("cannot build a causal LM from this config", ValueError), torch.device(device):
        return AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)


def transformer_shape(fields: dict) -> dict:
    """The sizes the analytic (Llama-style) count needs, read from the transformers
    configuration, so absent fields take transformers' defaults, as the built model does. A
    size left None means "derived by the model's code" (GPT-Neo's MLP: 4 x hidden), which the
    closed form does not know: such a model, like one lacking a field, is counted only."""
    config = hf_config(fields)
    names = {"hidden": "hidden_size", "intermediate": "intermediate_size"}
    names |= {"layers": "num_hidden_layers", "heads": "num_attention_heads", "vocab": "vocab_size"}
    shape = {key: getattr(config, name, None) for key, name in names.items()}
    h, heads = shape["hidden"], shape["heads"]
    shape["kv_heads"] = getattr(config, "num_key_value_heads", None) or heads
    shape["head_dim"] = getattr(config, "head_dim", None) or (h // heads if h and heads else None)
    unset = [k for k, v in shape.items() if not isinstance(v, int)]
    if unset:
        raise ModelConfigError(
            f"the closed-form FLOP count needs a Llama-style config ({config.model_type} leaves "
            f"{', '.join(unset)} unset)"
        )
    return shape
