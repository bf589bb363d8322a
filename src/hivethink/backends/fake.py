"""A scripted backend for tests: returns chosen texts and remembers every request it got.

Token counts are whitespace word counts: ``prompt_tokens`` over all message contents of a
request, ``completion_tokens`` over the returned text. ``max_tokens`` is not enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hivethink.backends.base import Completion, GenRequest

Reply = str | Completion
Script = Callable[[GenRequest, int], Reply] | Sequence[Reply]


def word_count(text: str) -> int:
    return len(text.split())


class ScriptedBackend:
    """Answers from a script.

    ``script`` is either a callable ``(request, call_index) -> str`` (``call_index`` counts
    requests from 0 across all ``generate`` calls) or a list of replies consumed in order
    (running out raises ``RuntimeError``). A reply may also be a ready :class:`Completion`,
    returned as it is (to script errors). ``requests`` lists every request received;
    ``calls`` lists the batches, one per ``generate`` call.
    """

    def __init__(self, script: Script, name: str = "fake") -> None:
        self.name = name
        self.script = script
        self.requests: list[GenRequest] = []
        self.calls: list[list[GenRequest]] = []

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
