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
