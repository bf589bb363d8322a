"""Random-weight models at the shapes of public checkpoints, for speed measurements without a download.

Each shape is the architecture part of the model's public ``config.json``, built as a transformers
config. Weights are drawn directly on the target device in the fused layout the decoder uses
(no CPU detour, no second copy): a 32B-sized model fits on one 80 GB GPU with room for a small KV
cache. The numbers they produce are meaningless; only their speed is measured.
"""

from __future__ import annotations

from typing import Any

import torch

from hivethink.errors import HivethinkError
from hivethink.models.config import ModelConfig, check_shapes
from hivethink.models.loader import LoadedModel, check_device, parse_dtype
from hivethink.models.transformer import Decoder, LayerWeights
from hivethink.models.weights import Linear

# name -> (transformers config class, its arguments)
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    # Qwen/Qwen3-8B: q/k norm, no biases
    "qwen3-8b": ("Qwen3Config", dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288,
                                     num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                                     head_dim=128, max_position_embeddings=40960, rope_theta=1e6,
                                     rms_norm_eps=1e-6, tie_word_embeddings=False)),
    # Qwen/QwQ-32B (Qwen2 architecture): q/k/v biases, GQA ratio 5
    "qwq-32b": ("Qwen2Config", dict(vocab_size=152064, hidden_size=5120, intermediate_size=27648,
                                    num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8,
                                    max_position_embeddings=40960, rope_theta=1e6, rms_norm_eps=1e-5,
                                    tie_word_embeddings=False)),
    # for tests: the same code paths in milliseconds
    "tiny": ("Qwen3Config", dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                 max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-6,
                                 tie_word_embeddings=False)),
}
STD = 0.02  # weight scale (the usual initializer range): keeps activations finite in bf16


def hf_config(shape: str) -> Any:
    if shape not in SHAPES:
        raise HivethinkError(f"unknown shape {shape!r} (choose from {', '.join(sorted(SHAPES))})")
    import transformers

    cls_name, kwargs = SHAPES[shape]
    return getattr(transformers, cls_name)(**kwargs)


def random_model(shape: str, *, dtype: str | torch.dtype = "bfloat16", device: str | torch.device = "cpu",
                 seed: int = 0) -> LoadedModel:
    """A LoadedModel (no tokenizer) with random weights of ``shape``, created on ``device``."""
    hf = hf_config(shape)
    cfg = ModelConfig.from_hf(hf)
    check_shapes(cfg)
    dt, dev = parse_dtype(dtype), check_device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def rand(*size: int) -> torch.Tensor:
        return torch.randn(size, generator=gen, dtype=dt, device=dev).mul_(STD)

    def ones(n: int) -> torch.Tensor:
        return torch.ones(n, dtype=dt, device=dev)

    H, D, inter = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    qkv = (cfg.n_heads + 2 * cfg.n_kv_heads) * D
    layers = [LayerWeights(attn_norm=ones(H), wqkv=Linear(rand(qkv, H)),
                           bqkv=rand(qkv) if cfg.attention_bias else None,
                           q_norm=ones(D) if cfg.qk_norm else None, k_norm=ones(D) if cfg.qk_norm else None,
                           wo=Linear(rand(H, cfg.n_heads * D)), mlp_norm=ones(H),
                           w_gate_up=Linear(rand(2 * inter, H)), w_down=Linear(rand(H, inter)))
              for _ in range(cfg.n_layers)]
    embed = rand(cfg.vocab_size, H)
    lm_head = embed if cfg.tie_embeddings else rand(cfg.vocab_size, H)
    decoder = Decoder.from_parts(cfg, embed, ones(H), lm_head, layers)
    decoder.pack()  # keeps the plain weights: the bench builds its transformers baseline from them
    return LoadedModel(decoder=decoder, tokenizer=None, cfg=cfg, hf_config=hf, source=f"random:{shape}")


def weight_bytes(model: LoadedModel) -> int:
    """Bytes of weights one decode step reads: every layer matrix and the LM head in the layout
    its kernel reads (4-bit codes and their scales for int4), and the norms and biases (the
    embedding lookup reads a few rows)."""
    d = model.decoder
    ts = [d.norm] + [t for lw in d.layers for t in (lw.attn_norm, lw.bqkv, lw.q_norm, lw.k_norm, lw.mlp_norm)
                     if t is not None]
    return sum(lin.nbytes for lin in d.linears()) + sum(t.numel() * t.element_size() for t in ts)
