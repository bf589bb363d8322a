"""Loading: embedded GGUF (cached), HF directories, and one-line errors for bad files."""

from __future__ import annotations

import json

import pytest
import torch

from hivethink.errors import HivethinkError
from hivethink.models.loader import cache_root, embedded_gguf, load_model
from tests.conftest import tiny_hf


def test_embedded_model_shapes_and_cache(smol32):
    c = smol32.cfg
    assert (c.family, c.n_layers, c.hidden_size, c.n_heads, c.n_kv_heads, c.rope_theta) == (
        "llama", 30, 576, 9, 3, 100000.0)
    assert c.tie_embeddings and smol32.decoder.lm_head is smol32.decoder.embed
    assert embedded_gguf().name.endswith(".gguf")
    assert any((cache_root() / "models").glob("SmolLM2*/model.safetensors"))
    assert smol32.tokenizer.chat_template


def test_hf_directory_round_trip(tmp_path, smol32):
    hf = tiny_hf("qwen3", seed=4)
    hf.save_pretrained(tmp_path)
    smol32.tokenizer.save_pretrained(tmp_path)
    m = load_model(str(tmp_path), dtype="float32")
    assert m.cfg.family == "qwen3" and m.cfg.qk_norm
    ids = torch.randint(0, 512, (1, 12))
    from hivethink.engine.forward import Runner

    r = Runner(m)
    b = r.cache.new_block("p")
    ours = r.prefill(b, ids[0].tolist())
    torch.testing.assert_close(ours, hf(ids).logits[0, -1], atol=1e-4, rtol=1e-4)


def test_bad_model_inputs_are_one_line_errors(tmp_path):
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00garbage" * 10)
    other = tmp_path / "gpt2"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "empty").mkdir()
    cases = [str(corrupt), str(other), str(tmp_path / "empty"), str(tmp_path / "nope.gguf"),
             "no-such-org/no-such-model"]
    for spec in cases:
        with pytest.raises(HivethinkError) as err:
            load_model(spec)
        assert "\n" not in str(err.value), spec
    with pytest.raises(HivethinkError):
        load_model(None, dtype="float8")
