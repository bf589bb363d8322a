"""Exactness against plain transformers: same greedy tokens with one worker."""

from __future__ import annotations

import pytest
import torch

from hivethink.engine.bench import hf_model
from hivethink.engine.forward import Runner
from hivethink.engine.hive import chat_ids
from tests.conftest import as_loaded, tiny_hf


def greedy(model, prompt: list[int], n: int) -> list[int]:
    runner = Runner(model, page_size=16)  # small pages: many pages per block
    common, own = runner.cache.new_block("prompt"), runner.cache.new_block("own")
    nxt = int(runner.prefill(common, prompt).argmax())
    out = []
    for _ in range(n):
        out.append(nxt)
        nxt = int(runner.extend([[common, own]], [[nxt]])[0].argmax())
    return out


def hf_greedy(hf, prompt: list[int], n: int) -> list[int]:
    ids = torch.tensor([prompt])
    g = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                    do_sample=False, pad_token_id=0)
    return g[0, len(prompt):].tolist()


def test_embedded_model_matches_transformers_generate(smol32):
    prompt = chat_ids(smol32.tokenizer, [{"role": "user", "content": "Explain why the sky is blue."}])
    hf = hf_model(smol32)
    assert greedy(smol32, prompt, 64) == hf_greedy(hf, prompt, 64)


@pytest.mark.parametrize("family", ["qwen2", "qwen3"])
def test_tiny_qwen_matches_transformers_generate(family):
    hf = tiny_hf(family)
    model = as_loaded(hf)
    assert model.cfg.attention_bias == (family == "qwen2")
    assert model.cfg.qk_norm == (family == "qwen3")
    prompt = torch.randint(0, 512, (37,), generator=torch.Generator().manual_seed(1)).tolist()
    assert greedy(model, prompt, 64) == hf_greedy(hf, prompt, 64)


def test_hf_model_rebuilt_from_engine_weights_is_the_same_model():
    hf = tiny_hf("qwen3", seed=3)
    again = hf_model(as_loaded(hf))
    ids = torch.randint(0, 512, (1, 20))
    torch.testing.assert_close(hf(ids).logits, again(ids).logits)


def greedy_one_block(runner: Runner, prompt: list[int], n: int) -> list[int]:
    """Greedy decoding in the prompt's own block: a plain generation's path (attended densely)."""
    block = runner.cache.new_block("gen")
    nxt = int(runner.prefill(block, prompt).argmax())
    out = []
    for _ in range(n):
        out.append(nxt)
        nxt = int(runner.prefill(block, [nxt]).argmax())
    return out


@pytest.mark.parametrize("dense_keys", [None, 1])
@pytest.mark.parametrize("family", ["qwen2", "qwen3"])
def test_a_plain_generation_matches_transformers_generate(family, dense_keys, monkeypatch):
    """Decoded by the batched matmuls while short, densely from a sequence copy once long (here:
    from the first token when ``dense_keys`` is 1, else from the DENSE_MIN_KEYS-th key)."""
    from hivethink.engine import attention

    if dense_keys is not None:
        monkeypatch.setattr(attention, "DENSE_MIN_KEYS", dense_keys)
    hf = tiny_hf(family)
    prompt = torch.randint(0, 512, (37,), generator=torch.Generator().manual_seed(1)).tolist()
    runner = Runner(as_loaded(hf), page_size=16)
    n = attention.DENSE_MIN_KEYS + 20 - len(prompt) if dense_keys is None else 64
    assert greedy_one_block(runner, prompt, n) == hf_greedy(hf, prompt, n)
    assert list(runner.backend.copies) == [0]  # decoded from its sequence copy in the end
