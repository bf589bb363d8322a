"""The OpenAI-compatible HTTP API over one :class:`~hivethink.engine.scheduler.Engine`.

``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``, ``GET /v1/models/{id}``
and ``GET /health``. Concurrent requests are batched by the engine's loop thread; a handler only
tokenizes, submits and forwards text pieces, reading each stream in a worker thread so the event
loop never blocks. A client that hangs up cancels its streams (or its hive job).
``response_format`` ``{"type": "json_schema", "json_schema": {"schema": ...}}`` constrains the
reply to the schema (constrained decoding over the engine's logits).

The ``"hivethink"`` extension field turns a request into a multi-worker job (a
:class:`~hivethink.engine.hive.HiveJob`, decoded in the same passes as every other request): the
problem is the last user message, with any system messages put in front of it as context; the
workers get the collaboration prompt of the ``hogwild`` prompt book (``serve --prompts DIR``). The
answer is ``choices[0].message.content``; every worker's text is under the top-level
``"hivethink"`` key; streamed chunks name their worker.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from hivethink.engine import (
    Engine,
    GenJob,
    HiveConfig,
    HiveJob,
    HiveResult,
    SamplingParams,
    chat_ids,
)
from hivethink.errors import HivethinkError
from hivethink.serve.limits import ServeLimits
from hivethink.serve.schema import ApiError, ChatCompletionRequest, Message, error_body

_END = object()  # a stream has no more pieces
SEED_RANGE = 2**32  # seeds are used modulo this


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse(obj: Any) -> str:
    """One server-sent event; JSON escapes newlines, so the payload never breaks the framing."""
    return f"data: {_json(obj)}\n\n"


def current_rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


class ApiKeyMiddleware:
    """Every request must carry ``Authorization: Bearer <key>``; otherwise 401 (plain ASGI, so
    streaming responses pass through untouched)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app, self.key = app, api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = token.strip()
        if not hmac.compare_digest(given, self.key):
            message = "missing API key" if not given else "invalid API key"
            response = JSONResponse(error_body(message, "invalid_request_error", None, "invalid_api_key"),
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass
class _Plan:
    """A validated request, resolved against the limits and the model."""

    n: int
    max_tokens: int | None  # None: the default, capped by the context left
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    stream: bool
    include_usage: bool
    json_schema: dict[str, Any] | None = None


def plan_request(req: ChatCompletionRequest, limits: ServeLimits) -> _Plan:
    """Bounds and neutral values; every violation is a 400 naming its parameter."""
    bad = req.unsupported()
    if bad:
        raise ApiError(400, bad[1], param=bad[0], code="unsupported_parameter")
    n = 1 if req.n is None else req.n
    if n > limits.max_n:
        raise ApiError(400, f"n must be at most {limits.max_n}, got {n}", param="n")
    param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if max_tokens is not None and max_tokens > limits.max_tokens:
        raise ApiError(400, f"{param} must be at most {limits.max_tokens}, got {max_tokens}", param=param)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > limits.max_stop:
        raise ApiError(400, f"at most {limits.max_stop} stop strings, got {len(stop)}", param="stop")
    if any(not s or len(s) > limits.max_stop_chars for s in stop):
        raise ApiError(400, f"stop strings must have 1 to {limits.max_stop_chars} characters", param="stop")
    temperature = 1.0 if req.temperature is None else req.temperature
    top_p = 1.0 if req.top_p is None else req.top_p
    if top_p == 0:  # only the most likely token is left: greedy
        temperature, top_p = 0.0, 1.0
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    if include_usage and not req.stream:
        raise ApiError(400, "stream_options is only allowed with stream: true", param="stream_options")
    schema = req.response_format.constraint() if req.response_format is not None else None
    if schema is not None and req.hivethink is not None:
        raise ApiError(400, "response_format json_schema is not supported for a hivethink request",
                       param="response_format")
    return _Plan(n=n, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                 seed=None if req.seed is None else req.seed % SEED_RANGE, stop=stop,
                 stream=bool(req.stream), include_usage=include_usage, json_schema=schema)


class _Server:
    """The state behind the routes: the engine, the served name, the limits, the hive slots."""

    def __init__(self, engine: Engine, model_name: str, limits: ServeLimits) -> None:
        self.engine, self.model_name, self.limits = engine, model_name, limits
        self.model = engine.model
        self.context = int(self.model.cfg.max_positions)
        self.created = int(time.time())
        self.hive_slots = threading.BoundedSemaphore(limits.max_hive_jobs)
        self.hive_jobs = 0
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Threads that wait for stream pieces (their own pool: they may wait long)."""
        if self._limiter is None:
            e = self.engine
            self._limiter = anyio.CapacityLimiter(e.max_rows + min(e.max_waiting, 64) + 8)
        return self._limiter

    # -- helpers ---------------------------------------------------------------------------
    def check_model(self, name: str) -> None:
        if name != self.model_name:
            raise ApiError(404, f"The model {name!r} does not exist (this server has {self.model_name!r})",
                           param="model", code="model_not_found")

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "hivethink"}

    def busy(self, message: str) -> ApiError:
        return ApiError(429, message, type="server_busy", code="server_busy", headers={"Retry-After": "1"})

    async def read_body(self, request: Request) -> bytes:
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise ApiError(400, "invalid Content-Length header") from None
            if size > limit:
                raise ApiError(413, f"request body too large ({size} bytes; at most {limit})",
                               code="request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body too large (over {limit} bytes)", code="request_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def envelope(self, cid: str, created: int, obj: str) -> dict[str, Any]:
        return {"id": cid, "object": obj, "created": created, "model": self.model_name,
                "system_fingerprint": None}

    # -- plain chat ------------------------------------------------------------------------
    async def chat(self, request: Request, req: ChatCompletionRequest, plan: _Plan) -> Response:
        messages = [m.as_chat() for m in req.messages]
        prompt = await self.tokenize(messages)
        room = self.context - len(prompt)
        if room < 1:
            raise ApiError(400, f"the prompt has {len(prompt)} tokens; the model's context is {self.context}",
                           param="messages", code="context_length_exceeded")
        if plan.max_tokens is not None and plan.max_tokens > room:
            raise ApiError(400, f"the prompt ({len(prompt)} tokens) plus max_tokens ({plan.max_tokens}) "
                           f"exceed the model's context ({self.context})", param="max_tokens",
                           code="context_length_exceeded")
        max_tokens = plan.max_tokens or min(self.limits.default_max_tokens, self.limits.max_tokens, room)
        seed = secrets.randbelow(SEED_RANGE) if plan.seed is None else plan.seed
        streams: list[GenJob] = []
        try:
            for i in range(plan.n):  # choice i samples with seed + i: n distinct, reproducible choices
                sampling = SamplingParams(plan.temperature, plan.top_p, seed=(seed + i) % SEED_RANGE)
                streams.append(self.engine.generate(prompt, max_tokens=max_tokens, sampling=sampling,
                                                    stop=plan.stop, json_schema=plan.json_schema, stream=True))
        except HivethinkError as e:
            for s in streams:
                s.cancel()
            if "busy" in str(e) or "shutting down" in str(e):
                raise self.busy(str(e)) from None
            raise ApiError(400, str(e)) from None
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if plan.stream:
            return _sse_response(self.stream_chat(cid, created, streams, len(prompt), plan.include_usage))
        return await self.complete_chat(request, cid, created, streams, len(prompt))

    async def tokenize(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            return await run_in_threadpool(chat_ids, self.model.tokenizer, messages)
        except Exception as e:  # the template refuses the conversation (roles out of order, ...)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise ApiError(400, f"cannot apply the model's chat template: {first}", param="messages") from None

    async def _next_piece(self, it: Any) -> Any:
        return await anyio.to_thread.run_sync(next, it, _END, limiter=self.limiter, abandon_on_cancel=True)

    async def _pump(self, index: int, stream: GenJob, out: asyncio.Queue) -> None:
        it = iter(stream)
        try:
            while (piece := await self._next_piece(it)) is not _END:
                out.put_nowait((index, piece))
        finally:
            out.put_nowait((index, _END))

    async def stream_chat(self, cid: str, created: int, streams: list[GenJob], prompt_tokens: int,
                          include_usage: bool) -> AsyncIterator[str]:
        base = self.envelope(cid, created, "chat.completion.chunk")
        extra = {"usage": None} if include_usage else {}

        def chunk(i: int, delta: dict[str, Any], finish: str | None = None) -> str:
            return sse({**base, "choices": [{"index": i, "delta": delta, "logprobs": None,
                                             "finish_reason": finish}], **extra})

        queue: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.create_task(self._pump(i, s, queue)) for i, s in enumerate(streams)]
        try:
            for i in range(len(streams)):
                yield chunk(i, {"role": "assistant", "content": ""})
            open_ = len(streams)
            while open_:
                i, piece = await queue.get()
                if piece is not _END:
                    yield chunk(i, {"content": piece})
                    continue
                open_ -= 1
                failed = _failure(streams[i])
                if failed:
                    yield sse(failed.body())
                    return
                yield chunk(i, {}, streams[i].finish_reason)
            if include_usage:
                yield sse({**base, "choices": [], "usage": _usage(prompt_tokens, streams)})
            yield "data: [DONE]\n\n"
        finally:  # also when the client hung up: its streams stop at the next pass
            for s in streams:
                s.cancel()
            for t in tasks:
                t.cancel()

    async def complete_chat(self, request: Request, cid: str, created: int, streams: list[GenJob],
                            prompt_tokens: int) -> Response:
        tasks = [asyncio.create_task(anyio.to_thread.run_sync(s.result, limiter=self.limiter,
                                                              abandon_on_cancel=True)) for s in streams]
        try:
            if not await self._wait(request, lambda: all(t.done() for t in tasks), tasks):
                return Response(status_code=499)  # nobody is listening
        finally:
            for s in streams:
                s.cancel()
            for t in tasks:
                t.cancel()
        for s in streams:
            failed = _failure(s)
            if failed:
                raise failed
        choices = [{"index": i, "message": {"role": "assistant", "content": s.text}, "logprobs": None,
                    "finish_reason": s.finish_reason} for i, s in enumerate(streams)]
        return JSONResponse({**self.envelope(cid, created, "chat.completion"), "choices": choices,
                             "usage": _usage(prompt_tokens, streams)})

    async def _wait(self, request: Request, done: Callable[[], bool], tasks: list[asyncio.Task]) -> bool:
        """Wait for ``tasks``; False as soon as the client has disconnected."""
        while not done():
            await asyncio.wait(tasks, timeout=self.limits.poll_s, return_when=asyncio.ALL_COMPLETED)
            if not done() and await request.is_disconnected():
                return False
        return True

    # -- hive jobs -------------------------------------------------------------------------
    async def hive(self, request: Request, req: ChatCompletionRequest, plan: _Plan) -> Response:
        opts = req.hivethink
        assert opts is not None
        given = opts.model_fields_set
        if opts.workers > self.limits.max_workers:
            raise ApiError(400, f"hivethink.workers must be between 1 and {self.limits.max_workers}, "
                           f"got {opts.workers}", param="hivethink.workers")
        if "max_steps" in given and opts.max_steps > self.limits.max_tokens:
            raise ApiError(400, f"hivethink.max_steps must be at most {self.limits.max_tokens}, "
                           f"got {opts.max_steps}", param="hivethink.max_steps")
        if plan.n != 1:
            raise ApiError(400, "n must be 1 for a hivethink (multi-worker) request", param="n")
        if plan.stop:
            raise ApiError(400, "stop is not supported for a hivethink (multi-worker) request", param="stop")
        problem = _problem(req.messages)
        # what the hivethink field leaves out comes from the request
        from_request = {
            "max_steps": plan.max_tokens or min(self.limits.default_max_tokens, self.limits.max_tokens),
            "temperature": plan.temperature, "top_p": plan.top_p,
            "seed": secrets.randbelow(SEED_RANGE) if plan.seed is None else plan.seed}
        try:
            cfg = HiveConfig(**{**opts.model_dump(), **{k: v for k, v in from_request.items() if k not in given}})
            job = await run_in_threadpool(HiveJob, self.model, cfg, problem)
        except HivethinkError as e:
            raise ApiError(400, str(e), param="hivethink") from None
        if job.width > self.engine.max_rows:
            raise ApiError(400, f"a {cfg.workers}-worker job decodes {job.width} rows in one pass; this server "
                           f"decodes at most {self.engine.max_rows} (--max-batch)", param="hivethink.workers")
        prompt_tokens = len(job.prompt)
        # the shared context holds the prompt and every worker's text (headers and checks included)
        need = prompt_tokens + cfg.workers * (cfg.max_steps + cfg.finisher_tokens + 64) + 64
        if need > self.context:
            raise ApiError(400, f"this job may need {need} positions; the model's context is {self.context} "
                           "(fewer workers or max_steps)", param="hivethink", code="context_length_exceeded")
        if not self.hive_slots.acquire(blocking=False):
            raise self.busy(f"server busy: {self.limits.max_hive_jobs} multi-worker jobs running or waiting")
        running = _HiveJob(self, job, stream=plan.stream)
        running.start()
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if plan.stream:
            return _sse_response(self.stream_hive(running, cid, created, prompt_tokens, plan.include_usage))
        try:
            result = await running.wait(request, self.limits.poll_s)
        finally:
            running.cancel()
        if result is None:
            return Response(status_code=499)
        body = {**self.envelope(cid, created, "chat.completion"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result.answer or ""},
                             "logprobs": None, "finish_reason": _hive_finish(result)}],
                "usage": _hive_usage(prompt_tokens, result), "hivethink": hive_summary(result, cfg, texts=True)}
        return JSONResponse(body)

    async def stream_hive(self, job: _HiveJob, cid: str, created: int, prompt_tokens: int,
                          include_usage: bool) -> AsyncIterator[str]:
        base = self.envelope(cid, created, "chat.completion.chunk")
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None, ext: dict[str, Any]) -> str:
            return sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish}], **extra, "hivethink": ext})

        try:
            yield chunk({"role": "assistant", "content": ""}, None, {"worker": None})
            while True:
                kind, a, b = await job.events.get()
                if kind == "token":
                    yield chunk({"content": b}, None, {"worker": a})
                elif kind == "error":
                    yield sse(a.body())
                    return
                else:
                    result: HiveResult = a
                    break
            yield chunk({"content": result.answer or ""}, _hive_finish(result),
                        {"worker": None, "final": True, **hive_summary(result, job.cfg, texts=False)})
            if include_usage:
                yield sse({**base, "choices": [], "usage": _hive_usage(prompt_tokens, result)})
            yield "data: [DONE]\n\n"
        finally:
            job.cancel()


class _HiveJob:
    """One hive request: a :class:`HiveJob` submitted to the server's engine (its rows share the
    passes of every other request). Events arrive on an asyncio queue: ("token", worker, piece),
    ("done", result, None), ("error", ApiError, None)."""

    def __init__(self, server: _Server, job: HiveJob, *, stream: bool) -> None:
        self.server, self.job, self.cfg, self.stream = server, job, job.cfg, stream
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue = asyncio.Queue()
        job.on_token = self._on_token
        self._waiter = threading.Thread(target=self._run, name="hivethink-hive-wait", daemon=True)

    def start(self) -> None:
        with self.server._lock:
            self.server.hive_jobs += 1
        try:
            self.server.engine.submit(self.job)
        except HivethinkError:
            self._done()
            raise
        self._waiter.start()

    def cancel(self) -> None:
        self.job.cancel()

    def _emit(self, *event: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is gone (server shut down)
            self.job.cancel()

    def _on_token(self, worker: str, piece: str) -> None:  # in the engine's thread
        if self.stream and not self.job.cancelled:
            self._emit("token", worker, piece)

    def _run(self) -> None:
        try:
            self.job.wait()
            if self.job.result is not None:
                self._emit("done", self.job.result, None)
            elif self.job.finish_reason != "cancelled":
                self._emit("error", ApiError(500, f"the multi-worker job failed: {self.job.error}",
                                             type="server_error"), None)
        finally:
            self._done()

    def _done(self) -> None:
        with self.server._lock:
            self.server.hive_jobs -= 1
        self.server.hive_slots.release()

    async def wait(self, request: Request, poll_s: float) -> HiveResult | None:
        """The result; None if the client hung up first; ApiError if the job failed."""
        while True:
            try:
                kind, a, _ = await asyncio.wait_for(self.events.get(), timeout=poll_s)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    return None
                continue
            if kind == "done":
                return a
            if kind == "error":
                raise a


def _problem(messages: list[Message]) -> str:
    """The hive's problem: system messages (as context) then the last user message."""
    if messages[-1].role != "user":
        raise ApiError(400, "a hivethink request must end with a user message (the problem)", param="messages")
    context = [m.text() for m in messages if m.role in ("system", "developer") and m.text().strip()]
    problem = messages[-1].text()
    if not problem.strip():
        raise ApiError(400, "the last user message (the problem) is empty", param="messages")
    return "\n\n".join([*context, problem])


def _failure(stream: GenJob) -> ApiError | None:
    if stream.finish_reason == "error":
        return ApiError(500, f"generation failed: {stream.error}", type="server_error")
    if stream.finish_reason == "cancelled":
        return ApiError(503, "the request was cancelled (server shutting down)", type="server_error")
    return None


def _openai_usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """OpenAI's usage object; ``prompt_tokens_details.cached_tokens``: the prompt tokens the prefix
    cache held (they were not computed for this request)."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def _usage(prompt_tokens: int, streams: list[GenJob]) -> dict[str, Any]:
    """The prompt counted once, every choice's tokens; cached: what the cache held for every choice."""
    return _openai_usage(prompt_tokens, sum(len(s.tokens) for s in streams),
                         min((s.cached_tokens for s in streams), default=0))


def _hive_usage(prompt_tokens: int, result: HiveResult) -> dict[str, Any]:
    return _openai_usage(prompt_tokens, sum(result.tokens.values()), result.cached_tokens)


def _hive_finish(result: HiveResult) -> str:
    return "stop" if result.finished_by == "answer" else "length"


def hive_summary(result: HiveResult, cfg: HiveConfig, *, texts: bool) -> dict[str, Any]:
    """The ``"hivethink"`` object of a response (workers' texts only where not streamed)."""
    workers = {}
    for name in result.tokens:
        w: dict[str, Any] = {"tokens": result.tokens[name], "answer": result.answers.get(name),
                             "references": result.references.get(name, 0),
                             "impersonations": result.impersonations.get(name, 0)}
        if texts:
            w["text"] = result.texts.get(name, "")
        workers[name] = w
    return {"answer": result.answer, "finished_by": result.finished_by, "steps": result.steps,
            "layout": cfg.layout, "visibility": result.visibility, "checks": result.checks,
            "checks_yes": result.checks_yes, "forced_tokens": result.forced_tokens,
            "wall_s": round(result.wall_s, 3), "workers": workers}


def _sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hivethink")
    except PackageNotFoundError:
        return "0"


def create_app(engine: Engine, model_name: str, *, api_key: str | None = None,
               limits: ServeLimits | None = None) -> FastAPI:
    """The FastAPI app serving ``engine`` (already started) under the name ``model_name``."""
    limits = limits or ServeLimits()
    limits.validate()
    if api_key is not None and not api_key:
        raise HivethinkError("the API key must not be empty")
    server = _Server(engine, model_name, limits)
    app = FastAPI(title="hivethink", version=_version(), docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hivethink = server
    if api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        loc = ".".join(str(p) for p in errors[0].get("loc", ())) if errors else ""
        msg = errors[0].get("msg", "invalid request") if errors else "invalid request"
        return JSONResponse(error_body(f"{loc}: {msg}" if loc else msg, param=loc or None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {first}", "server_error"),
                            status_code=500)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        running, waiting = engine.load
        return {"status": "ok", "model": model_name, "running": running, "waiting": waiting,
                "hive_jobs": server.hive_jobs, "passes": engine.passes, "rss_mb": current_rss_mb(),
                # the engine is idle and has handed back the memory its last work freed
                "settled": engine.settled}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        server.check_model(model_id)
        return server.model_card()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await server.read_body(request)
        try:
            req = ChatCompletionRequest.model_validate_json(body)
        except ValidationError as e:
            raise ApiError.from_validation(e) from None
        server.check_model(req.model)
        plan = plan_request(req, limits)
        if req.hivethink is not None:
            return await server.hive(request, req, plan)
        return await server.chat(request, req, plan)

    return app
