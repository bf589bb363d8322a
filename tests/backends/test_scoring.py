"""Scoring text through every backend: the local engine's log-likelihoods equal a manual
log-softmax over its own logits; an OpenAI-compatible server's echoed prompt log-probabilities
are summed over the continuation's tokens, and a server without them is a per-request error."""

from __future__ import annotations

import json
import re

import torch

from hivethink.backends.base import Score, Scorer, ScoreRequest
from hivethink.backends.fake import EchoBackend, ScriptedBackend
from hivethink.backends.local import LocalBackend, score_ids
from hivethink.backends.openai_backend import OpenAIBackend
from tests.loopback_http import LoopbackServer


def manual(backend: LocalBackend, prompt: list[int], cont: list[int]) -> list[float]:
    """log p(cont[k] | prompt + cont[:k]) from the engine's logits, one prefix at a time."""
    engine = backend.engine
    ids, out = prompt + cont, []
    for k in range(len(prompt), len(ids)):
        with engine._step_lock:  # the loop thread must not run a pass meanwhile
            block = engine.cache.new_block("manual", cacheable=False)
            logits = engine.runner.prefill(block, ids[:k])
            engine.cache.free_block(block)
        out.append(float(torch.log_softmax(logits.float(), dim=-1)[ids[k]]))
    return out


def test_local_scores_equal_a_log_softmax_over_the_engine_logits(tiny_smol):
    backend = LocalBackend(loaded=tiny_smol)
    try:
        long_prompt = "A paragraph that goes on. " * 40  # more than one 128-token chunk
        requests = [ScoreRequest("The sky is", " blue today."), ScoreRequest("Paris is the capital of ", "France"),
                    ScoreRequest(long_prompt, "The end."), ScoreRequest("", "Hello there")]
        scores = backend.score(requests)
        assert isinstance(backend, Scorer)
        for request, score in zip(requests, scores, strict=True):
            prompt, cont = score_ids(tiny_smol.tokenizer, request.prompt, request.continuation)
            assert score.error is None and score.tokens == len(cont) >= 1
            assert score.token_logprobs == manual(backend, prompt, cont)
            assert score.logprob == sum(score.token_logprobs)
        # the trailing space moved to the continuation (lm-evaluation-harness's split)
        prompt, cont = score_ids(tiny_smol.tokenizer, "Paris is the capital of ", "France")
        assert tiny_smol.tokenizer.decode(cont) == " France"
        assert backend.score([ScoreRequest("x", "")])[0].error is not None
    finally:
        backend.close()


def completion_with_logprobs(text: str) -> str:
    tokens = re.findall(r"\s*\S+", text) + [" next"]
    offsets, at = [], 0
    for t in tokens:
        offsets.append(at)
        at += len(t)
    logprobs = [None] + [-0.5 * i for i in range(1, len(tokens))]
    return json.dumps({"id": "c", "object": "text_completion", "created": 0, "model": "m", "choices": [{
        "index": 0, "text": text + " next", "finish_reason": "length",
        "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets, "top_logprobs": None}}]})


def test_openai_scores_sum_the_continuations_echoed_logprobs():
    bodies: list[dict] = []

    def respond(body: dict):
        bodies.append(body)
        return 200, completion_with_logprobs(body["prompt"])

    server = LoopbackServer(respond)
    try:
        backend = OpenAIBackend(base_url=server.url, model="m", max_retries=0)
        [score] = backend.score([ScoreRequest("The cat sat ", "on the mat")])
        # tokens: The cat sat on the mat next -> the continuation is " on the mat" (tokens 3..5)
        assert score.error is None and score.tokens == 3 and score.logprob == -(1.5 + 2.0 + 2.5)
        assert bodies[0]["echo"] is True and bodies[0]["logprobs"] == 1 and bodies[0]["max_tokens"] == 1
        assert bodies[0]["prompt"] == "The cat sat on the mat"
    finally:
        server.close()


def test_a_server_without_prompt_logprobs_is_a_per_request_error():
    def respond(body: dict):
        return 200, json.dumps({"id": "c", "object": "text_completion", "created": 0, "model": "m",
                                "choices": [{"index": 0, "text": "x", "finish_reason": "length", "logprobs": None}]})

    server = LoopbackServer(respond)
    try:
        scores = OpenAIBackend(base_url=server.url, model="m", max_retries=0).score(
            [ScoreRequest("a", " b"), ScoreRequest("c", " d")])
        assert [s.error is not None and "cannot score text" in s.error for s in scores] == [True, True]
        failing = LoopbackServer(lambda body: (500, json.dumps({"error": {"message": "down"}})))
        try:
            [score] = OpenAIBackend(base_url=failing.url, model="m", max_retries=1, backoff_s=0.01).score(
                [ScoreRequest("a", " b")])
            assert score.error is not None and "after 2 attempts" in score.error
        finally:
            failing.close()
    finally:
        server.close()


def test_scripted_scores_and_a_backend_that_cannot_score():
    backend = ScriptedBackend(scores=lambda r, i: Score(logprob=-1.0 * (i + 1), tokens=1) if i else -4.0)
    first, second = backend.score([ScoreRequest("p", " one two"), ScoreRequest("p", " x")])
    assert (first.logprob, first.tokens, first.mean_nll) == (-4.0, 2, 2.0) and second.logprob == -2.0
    assert ScriptedBackend().score([ScoreRequest("p", " x")])[0].error is not None
    assert not isinstance(EchoBackend(), Scorer)
