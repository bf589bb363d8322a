"""Shared fixtures: the embedded model (loaded once per session) and tiny random models.

The fast tier (``bash scripts/test.sh``: ``-m "not slow"``) leaves out every test marked
``slow``. A test that asks for the embedded model's weights (``smol`` or ``smol32`` among its own
arguments) is marked here, so no test file has to remember it; tests that only borrow the
embedded tokenizer for a tiny random model (``tiny_smol``) stay fast. Ray, browser and
subprocess-heavy scenarios carry the mark in their own files.
"""

from __future__ import annotations

import pytest
import torch

from hivethink.models.config import ModelConfig
from hivethink.models.loader import LoadedModel, load_model
from hivethink.models.transformer import Decoder

REAL_MODEL = {"smol", "smol32"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is not None and REAL_MODEL & set(info.argnames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smol32() -> LoadedModel:
    return load_model(None, dtype="float32")


@pytest.fixture(scope="session")
def smol() -> LoadedModel:
    """The embedded model in the dtype this machine runs best (bf16 only where it is native)."""
    return load_model(None, dtype="auto")


def tiny_hf(family: str, seed: int = 0):
    """A small random-weight transformers model of a family (qwen2: biases; qwen3: q/k norm)."""
    from transformers import AutoModelForCausalLM, Qwen2Config, Qwen3Config

    torch.manual_seed(seed)
    common = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  rope_theta=10000.0, tie_word_embeddings=False)
    cfg = Qwen2Config(**common) if family == "qwen2" else Qwen3Config(head_dim=16, **common)
    hf = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    with torch.no_grad():  # biases are zero at init: make them matter
        for name, p in hf.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return hf


def as_loaded(hf) -> LoadedModel:
    cfg = ModelConfig.from_hf(hf.config)
    weights = {k: v.detach().clone() for k, v in hf.state_dict().items()}
    return LoadedModel(decoder=Decoder(cfg, weights), tokenizer=None, cfg=cfg, hf_config=hf.config,
                       source=f"tiny-{cfg.family}")


def tiny_with_tokenizer(tokenizer, seed: int = 0, vocab: int | None = None) -> LoadedModel:
    """A small random Llama that speaks through a real tokenizer (the embedded model's): the
    hive's policy runs on real text at a tiny cost per pass."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab or len(tokenizer), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=8192, rope_theta=10000.0, tie_word_embeddings=True,
                      eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    hf = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    loaded = as_loaded(hf)
    loaded.tokenizer = tokenizer
    return loaded


@pytest.fixture(scope="session")
def tiny_smol(smol32) -> LoadedModel:
    return tiny_with_tokenizer(smol32.tokenizer)
