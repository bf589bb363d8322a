"""The first load of a GGUF file parses it once (not three times): same weights, same tokenizer."""

from __future__ import annotations

import gguf
import pytest
import torch

from hivethink.models.loader import _gguf_parsed_once, embedded_gguf


@pytest.mark.slow
def test_parsing_once_changes_nothing_but_the_time():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = embedded_gguf()
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map

    def read():
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        return model.state_dict(), tokenizer

    plain, plain_tok = read()
    with _gguf_parsed_once():
        assert gguf.GGUFReader is not reader
        once, once_tok = read()
        assert gguf.GGUFReader.cache_info().hits >= 2  # config, weights, tokenizer: one parse
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader, name_map)  # restored
    assert plain.keys() == once.keys()
    assert all(torch.equal(plain[k], once[k]) for k in plain)
    text = "Alice [1]: 17 * 23 = \\boxed{391}\n\nBob:"
    assert plain_tok.encode(text) == once_tok.encode(text) and len(plain_tok) == len(once_tok)
