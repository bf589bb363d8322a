"""Backends without a model, for tests and drills.

:class:`ScriptedBackend` (``kind: fake``, built in Python) returns chosen texts and remembers
every request it got; ``max_tokens`` is not enforced. :class:`EchoBackend` (``kind: echo``, can
be configured from a lab YAML) answers deterministically and does enforce ``max_tokens``.
Token counts of both are whitespace word counts: ``prompt_tokens`` over all message contents of
a request, ``completion_tokens`` over the returned text. Both accept every request field;
``GenRequest.json_schema`` is not enforced (a scripted reply is what the test says it is), and
``ScriptedBackend.requests`` keeps it for tests to check.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence

from hivethink.backends.base import Completion, GenRequest, Score, ScoreRequest
from hivethink.errors import HivethinkError

Reply = str | Completion
Script = Callable[[GenRequest, int], Reply] | Sequence[Reply]
# scores(request, index) -> the continuation's log-probability, or a ready Score
Scores = Callable[[ScoreRequest, int], "float | Score"]


def word_count(text: str) -> int:
    return len(text.split())


class ScriptedBackend:
    """Answers from a script.

    ``script`` is either a callable ``(request, call_index) -> str`` (``call_index`` counts
    requests from 0 across all ``generate`` calls) or a list of replies consumed in order
    (running out raises ``RuntimeError``). A reply may also be a ready :class:`Completion`,
    returned as it is (to script errors). ``requests`` lists every request received;
    ``calls`` lists the batches, one per ``generate`` call.

    ``scores`` (optional) answers :meth:`score` requests: ``(request, index) -> logprob`` (the
    continuation's token count is its word count) or a ready :class:`Score`; without it every
    score request comes back with an error. ``score_requests`` lists them all.
    """

    def __init__(self, script: Script = (), name: str = "fake", scores: Scores | None = None) -> None:
        self.name = name
        self.script = script
        self.scores = scores
        self.requests: list[GenRequest] = []
        self.calls: list[list[GenRequest]] = []
        self.score_requests: list[ScoreRequest] = []

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        out = []
        for request in requests:
            index = len(self.score_requests)
            self.score_requests.append(request)
            if self.scores is None:
                out.append(Score(error="this scripted backend has no scores"))
                continue
            value = self.scores(request, index)
            if isinstance(value, Score):
                out.append(value)
            else:
                out.append(Score(logprob=float(value), tokens=max(1, word_count(request.continuation)),
                                 prompt_tokens=word_count(request.prompt)))
        return out

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        self.calls.append(list(requests))
        out = []
        for request in requests:
            index = len(self.requests)
            self.requests.append(request)
            out.append(self._complete(request, self._reply(request, index)))
        return out

    def _reply(self, request: GenRequest, index: int) -> Reply:
        if callable(self.script):
            return self.script(request, index)
        if index >= len(self.script):
            raise RuntimeError(
                f"ScriptedBackend: script exhausted after {len(self.script)} replies"
            )
        return self.script[index]

    @staticmethod
    def _complete(request: GenRequest, reply: Reply) -> Completion:
        if isinstance(reply, Completion):
            return reply
        return Completion(
            text=reply,
            prompt_tokens=sum(word_count(m["content"]) for m in request.messages),
            completion_tokens=word_count(reply),
        )


_WORD = re.compile(r"\S+")
_SURROGATE = re.compile("[\ud800-\udfff]")


class EchoBackend:
    """A deterministic backend for smoke tests and fault drills (``kind: echo`` in a lab YAML).

    Each request is answered with ``reply`` when it is set, else with the content of its last
    message. The text is cut after the request's ``max_tokens``-th whitespace-separated word
    (``finish_reason="length"``; ``max_tokens <= 0`` gives an empty text). Every ``generate``
    call first sleeps ``delay_s`` seconds, so a run can be made slow enough to interrupt::

        models: [{kind: echo, reply: "The answer is \\boxed{4}.", delay_s: 0.05}]
    """

    def __init__(self, reply: str | None = None, delay_s: float = 0.0, name: str = "echo") -> None:
        if reply is not None and not isinstance(reply, str):
            raise HivethinkError(f"echo backend: reply must be text, got {type(reply).__name__}")
        if reply is not None and _SURROGATE.search(reply):
            raise HivethinkError("echo backend: reply holds a lone surrogate (not writable text)")
        if (
            isinstance(delay_s, bool)
            or not isinstance(delay_s, (int, float))
            or not math.isfinite(delay_s)
            or not 0 <= delay_s <= 60
        ):
            raise HivethinkError(
                f"echo backend: delay_s must be a number of seconds in [0, 60], got {delay_s!r}"
            )
        if not isinstance(name, str) or not name:
            raise HivethinkError("echo backend: name must be a non-empty text")
        self.reply = reply
        self.delay_s = float(delay_s)
        self.name = name
        self.calls = 0  # generate calls so far

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return [self._complete(r) for r in requests]

    def _complete(self, request: GenRequest) -> Completion:
        text = self.reply
        if text is None:
            text = request.messages[-1]["content"] if request.messages else ""
        finish = "stop"
        words = list(_WORD.finditer(text))
        limit = max(request.max_tokens, 0)
        if len(words) > limit:
            text = text[: words[limit - 1].end()] if limit else ""
            finish = "length"
        return Completion(
            text=text,
            prompt_tokens=sum(word_count(m["content"]) for m in request.messages),
            completion_tokens=word_count(text),
            finish_reason=finish,
        )
