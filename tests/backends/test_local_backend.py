"""The local backend: a JSON Schema request is decoded under the schema's grammar (constrained
decoding over the engine's logits); calls from several threads share the engine's passes."""

from __future__ import annotations

import json
import threading

from hivethink.backends.base import GenRequest
from hivethink.backends.local import LocalBackend

SCHEMA = {"type": "object", "properties": {"value": {"type": "integer", "minimum": 0, "maximum": 50},
                                           "reasoning": {"type": "string", "maxLength": 40}},
          "required": ["value", "reasoning"], "additionalProperties": False}


def test_a_json_schema_request_always_parses(smol32):
    backend = LocalBackend(loaded=smol32)
    try:
        ask = [{"role": "user", "content": "Pick a number and say why."}]
        free, constrained = backend.generate([GenRequest(ask, max_tokens=60),
                                              GenRequest(ask, max_tokens=60, json_schema=SCHEMA)])
        reply = json.loads(constrained.text)
        assert set(reply) == {"value", "reasoning"} and 0 <= reply["value"] <= 50
        assert constrained.finish_reason == "stop" and constrained.error is None
        assert free.text != constrained.text
    finally:
        backend.close()


def test_calls_from_several_threads_share_passes(smol32):
    backend = LocalBackend(loaded=smol32)
    try:
        outs: dict[int, str] = {}

        def call(i: int) -> None:
            [c] = backend.generate([GenRequest([{"role": "user", "content": f"Say {i}."}], max_tokens=8)])
            outs[i] = c.text

        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = backend.engine.stats
        assert len(outs) == 3 and stats.rows > stats.passes  # some passes held several calls' rows
        alone = {i: backend.generate([GenRequest([{"role": "user", "content": f"Say {i}."}], max_tokens=8)])[0].text
                 for i in range(3)}
        assert outs == alone
    finally:
        backend.close()


def test_no_temperature_samples_as_the_model_generation_config_says():
    """The local counterpart of a provider's default: the model's generation config (greedy
    without one, or when it does not sample)."""
    from types import SimpleNamespace

    from transformers import GenerationConfig

    from hivethink.engine.sampling import SamplingParams

    backend = LocalBackend.__new__(LocalBackend)  # no weights needed to choose the sampling
    backend.model = SimpleNamespace(generation=GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95, top_k=20))
    chosen = backend._sampling(GenRequest([], temperature=None, seed=4))
    assert chosen == SamplingParams(temperature=0.6, top_p=0.95, top_k=20, seed=4)
    assert backend._sampling(GenRequest([], temperature=0.3, seed=4)) == SamplingParams(0.3, 1.0, seed=4)
    backend.model = SimpleNamespace(generation=None)
    assert backend._sampling(GenRequest([], temperature=None)).greedy


def test_a_prompt_asked_again_reports_the_tokens_the_prefix_cache_held(smol32):
    """The local backend's completions say how many prompt tokens the prefix cache held (whole
    64-token pages; the last token is always computed): none the first time, the rest after."""
    ask = GenRequest([{"role": "user", "content": "List the planets of the solar system in order. " * 20}],
                     max_tokens=2)
    backend = LocalBackend(loaded=smol32)
    try:
        first, second = backend.generate([ask]), backend.generate([ask])
    finally:
        backend.close()
    assert first[0].cached_tokens == 0 and first[0].prompt_tokens > 128
    assert second[0].cached_tokens == (second[0].prompt_tokens - 1) // 64 * 64
