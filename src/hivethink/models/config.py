"""The few numbers of a Llama/Qwen-family decoder that the engine needs, read from a HF config."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from hivethink.errors import HivethinkError

# model_type -> family. One decoder covers all three: they differ only in the flags below.
FAMILIES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
# RoPE variants whose frequencies do not depend on the sequence length (so one table serves all).
STATIC_ROPE = {"default", "linear", "llama3", "yarn"}


@dataclass(frozen=True)
class ModelConfig:
    family: str
    vocab_size: int
    hidden_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate_size: int
    rms_eps: float
    tie_embeddings: bool
    attention_bias: bool  # qwen2: biases on q, k, v
    qk_norm: bool  # qwen3: RMSNorm on each head of q and k before RoPE
    rope_type: str
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    max_positions: int
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()

    @classmethod
    def from_hf(cls, hf: Any) -> ModelConfig:
        """Read a transformers ``PretrainedConfig`` (v4 or v5 spelling of the RoPE fields)."""
        model_type = getattr(hf, "model_type", "?")
        if model_type not in FAMILIES:
            raise HivethinkError(
                f"unsupported architecture {model_type!r}: hivethink runs {sorted(FAMILIES)} models"
            )
        family = FAMILIES[model_type]
        params = dict(getattr(hf, "rope_parameters", None) or {})
        scaling = getattr(hf, "rope_scaling", None)
        if scaling:
            params = {**dict(scaling), **params}
        theta = params.get("rope_theta", getattr(hf, "rope_theta", 10000.0))
        rope_type = params.get("rope_type", params.get("type", "default")) or "default"
        if rope_type not in STATIC_ROPE:
            raise HivethinkError(f"unsupported RoPE scaling {rope_type!r} (supported: {sorted(STATIC_ROPE)})")
        head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        eos = hf.eos_token_id
        eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else ((eos,) if eos is not None else ())
        return cls(
            family=family,
            vocab_size=hf.vocab_size,
            hidden_size=hf.hidden_size,
            n_layers=hf.num_hidden_layers,
            n_heads=hf.num_attention_heads,
            n_kv_heads=getattr(hf, "num_key_value_heads", None) or hf.num_attention_heads,
            head_dim=head_dim,
            intermediate_size=hf.intermediate_size,
            rms_eps=hf.rms_norm_eps,
            tie_embeddings=bool(getattr(hf, "tie_word_embeddings", False)),
            attention_bias=bool(getattr(hf, "attention_bias", family == "qwen2")),
            qk_norm=family == "qwen3",
            rope_type=rope_type,
            rope_theta=float(theta),
            rope_scaling={k: v for k, v in params.items() if k not in ("rope_theta",)} or None,
            max_positions=int(getattr(hf, "max_position_embeddings", 32768)),
            bos_token_id=getattr(hf, "bos_token_id", None),
            eos_token_ids=eos_ids,
        )


def rope_frequencies(cfg: ModelConfig, hf_config: Any | None = None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies [head_dim/2] and the cos/sin scale of the model's RoPE variant.

    The default variant is computed here; scaled variants reuse transformers' own initialisers,
    so Llama-3 and YaRN frequencies are exactly the library's.
    """
    if cfg.rope_type == "default":
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
        return inv.float(), 1.0
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if hf_config is None:
        hf_config = _hf_config_for_rope(cfg)
    inv, scale = ROPE_INIT_FUNCTIONS[cfg.rope_type](hf_config, torch.device("cpu"))
    return inv.float(), float(scale if scale is not None else 1.0)


def _hf_config_for_rope(cfg: ModelConfig) -> Any:
    """A minimal transformers config carrying the RoPE fields (for a model loaded from our cache)."""
    from transformers import LlamaConfig

    rope = {"rope_theta": cfg.rope_theta, **(cfg.rope_scaling or {})}
    rope.setdefault("rope_type", cfg.rope_type)
    hf = LlamaConfig(
        hidden_size=cfg.hidden_size,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=cfg.max_positions,
    )
    if hasattr(hf, "rope_parameters"):
        hf.rope_parameters = rope
    else:  # transformers 4.x
        hf.rope_theta = cfg.rope_theta
        hf.rope_scaling = rope
    return hf


def check_shapes(cfg: ModelConfig) -> None:
    if cfg.n_heads % cfg.n_kv_heads:
        raise HivethinkError(f"{cfg.n_heads} query heads do not divide into {cfg.n_kv_heads} KV heads")
    if cfg.head_dim % 2:
        raise HivethinkError(f"odd head dim {cfg.head_dim} cannot carry RoPE")
    if not math.isfinite(cfg.rope_theta) or cfg.rope_theta <= 0:
        raise HivethinkError(f"bad rope_theta {cfg.rope_theta}")
