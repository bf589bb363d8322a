"""Independent batched generation: rows never see each other."""

from __future__ import annotations

from hivethink.backends.base import GenRequest
from hivethink.backends.local import LocalBackend
from hivethink.engine.bench import hf_model
from hivethink.engine.hive import chat_ids
from tests.engine.test_exact import hf_greedy


def test_batched_rows_equal_solo_runs_and_transformers(smol32):
    backend = LocalBackend(loaded=smol32)
    reqs = [GenRequest([{"role": "user", "content": q}], max_tokens=n) for q, n in
            (("What is 2+2?", 12), ("Name a colour.", 20), ("Say hello in French.", 16))]
    batch = backend.generate(reqs)
    solo = [backend.generate([r])[0] for r in reqs]
    assert [b.text for b in batch] == [s.text for s in solo]
    assert all(b.completion_tokens <= r.max_tokens for b, r in zip(batch, reqs, strict=True))
    hf = hf_model(smol32)
    prompt = chat_ids(smol32.tokenizer, reqs[1].messages)
    ref = smol32.tokenizer.decode(hf_greedy(hf, prompt, 20), skip_special_tokens=True)
    # transformers was made to run past the end of turn; ours stops there
    assert ref.startswith(batch[1].text) and len(batch[1].text) > 20


def test_stop_strings_cut_the_text(smol32):
    backend = LocalBackend(loaded=smol32)
    out = backend.generate([GenRequest([{"role": "user", "content": "Count: 1, 2, 3, 4, 5, 6"}],
                                       max_tokens=30, stop=[","])])[0]
    assert "," not in out.text and out.finish_reason == "stop"
