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
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from hivethink.backends.base import Completion, GenRequest

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
        if not requests:
            return []
        workers = min(self.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._complete, requests))

    def _complete(self, request: GenRequest) -> Completion:
        start = time.perf_counter()
        attempt = 0
        while True:
            try:
                completion = self._call(request)
            except Exception as exc:  # noqa: BLE001 - generate must never raise
                if _retryable(exc) and attempt < self.max_retries:
                    with self._lock:
                        self.retries += 1
                    time.sleep(self.backoff_s * 2**attempt)
                    attempt += 1
                    continue
                with self._lock:
                    self.failures += 1
                return Completion(
                    text="",
                    wall_s=time.perf_counter() - start,
                    finish_reason="error",
                    error=f"{_one_line(exc)} (after {attempt + 1} attempts)",
                )
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
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens
            if prompt_tokens is not None
            else sum(len(m["content"].split()) for m in request.messages),
            completion_tokens=(
                completion_tokens if completion_tokens is not None else len(text.split())
            ),
            finish_reason="length" if choice.finish_reason == "length" else "stop",
        )


def _count(value: Any) -> int | None:
    """A token count from ``usage``, or None when the server sent none or nonsense."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
