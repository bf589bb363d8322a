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
    assert c.tie_embeddings and smol32.decoder.lm_head.shape == tuple(smol32.decoder.embed.shape)
    assert not smol32.decoder.plain  # packed without a second, plain copy
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


@pytest.mark.parametrize("weights,kinds", [("int4", {"int4"}), ("int8", {"int8"}), ("auto", {"exact"})])
def test_an_hf_directory_runs_quantized_on_request(tmp_path, tiny_smol, weights, kinds):
    """HF checkpoints are requantized on request (int4: groups of 32; int8: per channel); auto
    keeps a float checkpoint exact. A quantized row computes the same alone and beside others."""
    from hivethink.engine.forward import Runner
    from hivethink.models.weights import Int4Linear, Int8Linear, OneDNNLinear

    hf = tiny_hf("qwen2", seed=5)
    hf.save_pretrained(tmp_path)
    tiny_smol.tokenizer.save_pretrained(tmp_path)
    exact = load_model(str(tmp_path), dtype="float32")
    m = load_model(str(tmp_path), dtype="float32", weights=weights)
    assert m.plan is not None and set(m.plan.kinds.values()) == kinds
    assert m.weights == (weights if weights != "auto" else "auto: exact")
    layer = m.decoder.layers[0]
    want = {"int4": Int4Linear, "int8": Int8Linear, "exact": OneDNNLinear}[kinds.pop()]
    assert isinstance(layer.wqkv, want) and isinstance(layer.w_down, want)
    assert m.decoder.rows_independent
    ids = list(range(10, 40))
    r_exact, r = Runner(exact), Runner(m)
    ref = r_exact.prefill(r_exact.cache.new_block("p"), ids)
    got = r.prefill(r.cache.new_block("p"), ids)
    tol = {"auto": 0.0, "int8": 0.05, "int4": 0.25}[weights]  # random tiny weights: int4 is coarse here
    assert (got - ref).abs().max() <= tol * ref.abs().max()


@pytest.mark.slow
def test_gguf_blocks_as_stored_dequantize_to_the_exact_weights(smol32):
    """The raw blocks the quantized modes read, in transformers' row order (Llama's q/k rows
    un-permuted), dequantize bit for bit to the weights the exact mode runs."""
    from safetensors.torch import load_file

    from hivethink.models.loader import _gguf_blocks, _gguf_cache
    from hivethink.models.weights import gguf_dequantize

    path = embedded_gguf()
    blocks, types = _gguf_blocks(path, _gguf_cache(path), smol32.cfg)
    exact = load_file(str(_gguf_cache(path) / "model.safetensors"))
    assert types["model.layers.0.self_attn.q_proj.weight"] == "Q4_1"
    assert types["model.embed_tokens.weight"] == "Q8_0" and "lm_head.weight" not in blocks
    for name in ["model.embed_tokens.weight"] + [n for n in blocks if ".layers.0." in n or ".layers.29." in n]:
        assert torch.equal(gguf_dequantize(blocks[name], types[name]), exact[name]), name


@pytest.mark.slow
def test_auto_on_the_embedded_gguf_reads_its_q4_1_blocks(smol32):
    """auto: every layer matmul as int4 from the Q4_1 blocks, the Q8_0 head exact (fp32 logits), the
    embedding looked up from its Q8_0 rows (equal to the exact table's); the quantized model
    agrees with the exact one on the next token and stays row batch-invariant."""
    from hivethink.engine.forward import Runner
    from hivethink.models.weights import GGUFEmbedding

    m = load_model(None, dtype="float32", weights="auto")
    assert m.weights == "auto: exact+int4" and m.plan is not None
    assert "int4 (210: Q4_1 as stored)" in m.plan.summary and "exact (1: Q8_0 dequantized)" in m.plan.summary
    assert isinstance(m.decoder.embed, GGUFEmbedding) and m.decoder.rows_independent
    tokens = torch.tensor([1, 500, 49151, 7])
    assert torch.equal(m.decoder.embed(tokens), smol32.decoder.embed[tokens])
    ids = smol32.tokenizer("The capital of France is")["input_ids"]
    r_exact, r = Runner(smol32), Runner(m)
    ref = r_exact.prefill(r_exact.cache.new_block("p"), ids)
    got = r.prefill(r.cache.new_block("p"), ids)
    assert int(got.argmax()) == int(ref.argmax())
    # one decode row alone, then beside 3 others: bit for bit the same
    def decode(extra: int) -> torch.Tensor:
        from hivethink.engine.attention import RowSpec, reserve_rows

        runner = Runner(m)
        mine = runner.cache.new_block("mine")
        runner.prefill(mine, ids)
        others = [runner.cache.new_block(f"o{i}") for i in range(extra)]
        rows = [RowSpec([mine], 1, 0)] + [RowSpec([o], 2, 1 + i) for i, o in enumerate(others)]  # other jobs
        reserve_rows(runner.cache, rows)  # the engine's part: a pass's pages are taken before it runs
        out = runner.forward(rows, [[7]] + [[11, 12]] * extra)[0]
        assert out is not None
        return out

    assert torch.equal(decode(0), decode(3))


def test_bad_weights_modes_are_one_line_errors(tmp_path):
    with pytest.raises(HivethinkError, match="choose from exact, int8, int4, auto"):
        load_model(None, weights="int3")
    with pytest.raises(HivethinkError, match="CPU ones"):
        load_model(None, weights="int4", device="meta")
