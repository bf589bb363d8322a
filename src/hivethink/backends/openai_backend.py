"""A backend over any OpenAI-compatible chat server (vLLM, llama.cpp server, OpenAI, ...).

The requests of one ``generate`` call run concurrently on a thread pool of ``concurrency``
threads. Timeouts, dropped connections, 429/5xx answers and malformed responses are retried up
to ``max_retries`` times with exponential backoff (``backoff_s * 2**attempt``); the client's own
retries are off so the loop here is the only one. A request that still fails comes back as
``Completion(text="", finish_reason="error", error=<one line>)``: ``generate`` never raises.
Token counts come from the response's ``usage``; without it (or with nonsense there) they are
whitespace word counts. Content that is not text is a malformed response; lone surrogates in the
text become U+FFFD (so traces and results can always be written as UTF-8). A request with a
``json_schema`` is sent with ``response_format`` (a strict JSON schema named "reply").

:meth:`OpenAIBackend.score` asks the legacy completions endpoint for the prompt's own
log-probabilities (``echo`` with ``logprobs``, as vLLM and llama.cpp's server offer them; one
generated token is requested and left out): the continuation's tokens are those from the
prompt's last character on (trailing spaces of the prompt move to the continuation, as in
lm-evaluation-harness; a token spanning the boundary counts for the continuation). A server
that gives no such log-probabilities answers each request with ``Score.error``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import openai

from hivethink.backends.base import Completion, GenRequest, Score, ScoreRequest

T = TypeVar("T")
R = TypeVar("R")
_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedResponse(Exception):
    """The server answered, but not with a usable chat completion."""


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, MalformedResponse, ValueError))


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server; ``retries``/``failures`` count events."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        concurrency: int = 8,
        timeout_s: float = 60,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0
        )
        self.retries = 0  # attempts repeated after a retryable failure
        self.failures = 0  # requests that came back as errors
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        return self._each(self._complete, requests)

    def _each(self, one: Callable[[R], T], requests: Sequence[R]) -> list[T]:
        """``one`` over the requests, up to ``concurrency`` at a time, in order."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(one, requests))

    def _retrying(self, call: Callable[[], T], retry: Callable[[BaseException], bool]) -> T | str:
        """``call()``'s result, retrying (with backoff, up to ``max_retries``) the failures
        ``retry`` accepts; once it gives up, the error as one line (counted as a failure). Never
        raises: a backend call must not."""
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - generate and score must never raise
                if retry(exc) and attempt < self.max_retries:
                    with self._lock:
                        self.retries += 1
                    time.sleep(self.backoff_s * 2**attempt)
                    attempt += 1
                    continue
                with self._lock:
                    self.failures += 1
                return f"{_one_line(exc)} (after {attempt + 1} attempts)"

    def _complete(self, request: GenRequest) -> Completion:
        start = time.perf_counter()
        completion = self._retrying(lambda: self._call(request), _retryable)
        if isinstance(completion, str):
            return Completion(text="", wall_s=time.perf_counter() - start, finish_reason="error", error=completion)
        completion.wall_s = time.perf_counter() - start
        return completion

    def _call(self, request: GenRequest) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:  # None: the server's default sampling
            kwargs |= {"temperature": request.temperature, "top_p": request.top_p}
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = request.stop
        if request.json_schema is not None:  # constrained JSON output (structured outputs)
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
            }
        response = self.client.chat.completions.create(**kwargs)
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise MalformedResponse(f"no choices in response: {str(response)[:120]!r}")
        choice = choices[0]
        text = choice.message.content
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise MalformedResponse(f"message content is {type(text).__name__}, not text")
        # a lone surrogate ("\ud800" in the JSON) cannot be written as UTF-8: make it U+FFFD
        text = _SURROGATE.sub("\ufffd", text)
        usage = getattr(response, "usage", None)
        prompt_tokens = _count(getattr(usage, "prompt_tokens", None))
        completion_tokens = _count(getattr(usage, "completion_tokens", None))
        # what servers with a prefix cache report (vLLM, SGLang, OpenAI): OpenAI's usage field
        cached = _count(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None))
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens
            if prompt_tokens is not None
            else sum(len(m["content"].split()) for m in request.messages),
            completion_tokens=(
                completion_tokens if completion_tokens is not None else len(text.split())
            ),
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            cached_tokens=cached or 0,
        )


    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        return self._each(self._score_one, requests)

    def _score_one(self, request: ScoreRequest) -> Score:
        def call() -> Score:
            try:
                return self._score_call(request)
            except NoPromptLogprobs as exc:  # the server's answer, not a failure: no retry
                return Score(error=str(exc))

        # a malformed echo is an error at once; the other retryable failures are retried
        score = self._retrying(call, lambda exc: _retryable(exc) and not isinstance(exc, MalformedResponse))
        return Score(error=score) if isinstance(score, str) else score

    def _score_call(self, request: ScoreRequest) -> Score:
        prompt, continuation = request.prompt, request.continuation
        moved = len(prompt) - len(prompt.rstrip(" "))
        if moved:
            prompt, continuation = prompt[:-moved], prompt[-moved:] + continuation
        text = prompt + continuation
        response = self.client.completions.create(
            model=self.model, prompt=text, max_tokens=1, temperature=0, echo=True, logprobs=1,
        )
        choices = getattr(response, "choices", None)
        logprobs = getattr(choices[0], "logprobs", None) if choices else None
        tokens = getattr(logprobs, "token_logprobs", None)
        offsets = getattr(logprobs, "text_offset", None)
        if not isinstance(tokens, list) or not isinstance(offsets, list) or len(tokens) != len(offsets):
            raise NoPromptLogprobs(
                f"server {self.name!r} gives no prompt log-probabilities (completions with echo and "
                "logprobs), so it cannot score text"
            )
        start, end, n = len(prompt), len(text), len(offsets)
        # a token is the continuation's when it starts before the text's end (the generated one
        # does not) and ends after the prompt's (its next token starts past the boundary)
        chosen = [i for i in range(n) if offsets[i] < end
                  and (offsets[i] >= start or (i + 1 < n and offsets[i + 1] > start))]
        values = [tokens[i] for i in chosen]
        if not values or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
            raise NoPromptLogprobs(
                f"server {self.name!r} gave no log-probability for the continuation's tokens"
            )
        return Score(logprob=float(sum(values)), tokens=len(values), prompt_tokens=chosen[0] if chosen else 0,
                     token_logprobs=[float(v) for v in values])


class NoPromptLogprobs(Exception):
    """The server answered, but without the prompt log-probabilities a score needs."""


def _count(value: Any) -> int | None:
    """A token count from ``usage``, or None when the server sent none or nonsense."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
