"""A short load test of a running server: rounds of concurrent streaming chat requests.

Each round fires ``requests`` streaming requests at once (at most ``concurrency`` in flight)
with the official ``openai`` async client, and records for each one the latency to the last
chunk, the time to the first text, the completion tokens (from ``usage``) and how it ended. A
request that errs, times out or ends without ``finish_reason`` is *lost*. The server's resident
memory (``/health``) after every round shows whether memory stays bounded. With ``hive_every=k``
every k-th request is a multi-worker hive job (the ``"hivethink"`` extension), so hive and plain
requests share the server's passes as they would in use.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openai

PROMPT = "In one or two sentences, tell me something about the number {i}."


@dataclass
class RequestResult:
    ok: bool
    latency_s: float
    ttft_s: float | None = None
    tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None


@dataclass
class RoundReport:
    round: int
    requests: int
    ok: int
    lost: int
    wall_s: float
    requests_per_s: float
    tokens_per_s: float
    latency_p50_s: float | None
    latency_p99_s: float | None
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    server_rss_mb: float | None  # after the round
    hive_requests: int = 0  # of ``requests``, how many were hive jobs
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    url: str
    model: str
    requests: int
    concurrency: int
    max_tokens: int
    rounds: list[RoundReport]
    server_rss_before_mb: float | None
    peak_rss_mb: float | None = None  # this process (the server too, when it runs in-process)
    in_process: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    hive_every: int = 0
    hive_workers: int = 2

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "lost": self.lost}


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100); None for no values."""
    return float(np.percentile(values, q)) if values else None


def health(url: str, api_key: str | None, timeout_s: float = 10) -> dict[str, Any]:
    req = urllib.request.Request(url.rstrip("/") + "/health")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - our own server URL
        return json.loads(resp.read())


def settled(url: str, api_key: str | None, wait_s: float = 10) -> dict[str, Any]:
    """The server's /health once it is idle and has handed back the memory its work freed (a
    hivethink server does that when its work runs out: read a moment earlier, its RSS would still
    hold the round's passes). Other servers (no ``settled`` field): at once."""
    h = health(url, api_key)
    deadline = time.monotonic() + wait_s
    while h.get("settled") is False and time.monotonic() < deadline:
        time.sleep(0.05)
        h = health(url, api_key)
    return h


async def _one(client: openai.AsyncOpenAI, model: str, i: int, max_tokens: int,
               gate: asyncio.Semaphore, hive_workers: int | None = None) -> RequestResult:
    """One streaming request; ``hive_workers``: send it as a hive job of that many workers (its
    steps capped at ``max_tokens``, its usage counting every worker's tokens)."""
    extra = None if hive_workers is None else {"hivethink": {"workers": hive_workers, "max_steps": max_tokens}}
    async with gate:
        t0 = time.perf_counter()
        ttft = finish = None
        tokens = 0
        try:
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": PROMPT.format(i=i)}],
                max_tokens=max_tokens, temperature=0, stream=True, stream_options={"include_usage": True},
                extra_body=extra)
            async for chunk in stream:
                if chunk.choices:
                    c = chunk.choices[0]
                    if c.delta.content and ttft is None:
                        ttft = time.perf_counter() - t0
                    finish = c.finish_reason or finish
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
        except Exception as e:  # a lost request, counted, never raised
            first = (str(e).strip().splitlines() or [""])[0][:200]
            return RequestResult(False, time.perf_counter() - t0, ttft, tokens, finish, f"{type(e).__name__}: {first}")
        ok = finish in ("stop", "length")
        return RequestResult(ok, time.perf_counter() - t0, ttft, tokens, finish,
                             None if ok else "ended without a finish_reason")


def is_hive(i: int, hive_every: int) -> bool:
    """Whether request ``i`` of a round is a hive job: every ``hive_every``-th, none for 0."""
    return hive_every > 0 and i % hive_every == hive_every - 1


async def _round(client: openai.AsyncOpenAI, model: str, n: int, concurrency: int, max_tokens: int,
                 timeout_s: float, offset: int, hive_every: int = 0,
                 hive_workers: int = 2) -> tuple[list[RequestResult], float]:
    gate = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(_one(client, model, offset + i, max_tokens, gate,
                                      hive_workers if is_hive(i, hive_every) else None))
             for i in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for t in pending:
        t.cancel()
    wall = time.perf_counter() - t0
    results = [t.result() if t in done else RequestResult(False, wall, error=f"timed out after {timeout_s:.0f}s")
               for t in tasks]
    return results, wall


async def run_load(url: str, model: str | None = None, *, requests: int = 50, concurrency: int | None = None,
                   max_tokens: int = 32, rounds: int = 1, api_key: str | None = None,
                   timeout_s: float = 300, on_round: Any = None, hive_every: int = 0,
                   hive_workers: int = 2) -> LoadReport:
    """Run ``rounds`` rounds of ``requests`` concurrent streaming requests against ``url``
    (every ``hive_every``-th of them a hive job of ``hive_workers`` workers)."""
    concurrency = concurrency or requests
    key = api_key or "EMPTY"
    client = openai.AsyncOpenAI(base_url=url.rstrip("/") + "/v1", api_key=key, max_retries=0,
                                timeout=timeout_s)
    try:
        if model is None:
            model = (await client.models.list()).data[0].id
        warm = await _one(client, model, -1, 4, asyncio.Semaphore(1))  # first-use costs out of the figures
        if not warm.ok:
            raise RuntimeError(f"the warm-up request failed: {warm.error}")
        before = (await asyncio.to_thread(settled, url, api_key)).get("rss_mb")
        report = LoadReport(url=url, model=model, requests=requests, concurrency=concurrency,
                            max_tokens=max_tokens, rounds=[], server_rss_before_mb=before,
                            hive_every=hive_every, hive_workers=hive_workers)
        for r in range(rounds):
            results, wall = await _round(client, model, requests, concurrency, max_tokens, timeout_s,
                                         r * requests, hive_every, hive_workers)
            ok = [x for x in results if x.ok]
            lat = [x.latency_s for x in ok]
            ttft = [x.ttft_s for x in ok if x.ttft_s is not None]
            rss = (await asyncio.to_thread(settled, url, api_key)).get("rss_mb")
            rr = RoundReport(
                round=r + 1, requests=len(results), ok=len(ok), lost=len(results) - len(ok), wall_s=round(wall, 3),
                requests_per_s=round(len(ok) / wall, 3), tokens_per_s=round(sum(x.tokens for x in ok) / wall, 2),
                latency_p50_s=_r(percentile(lat, 50)), latency_p99_s=_r(percentile(lat, 99)),
                ttft_p50_s=_r(percentile(ttft, 50)), ttft_p99_s=_r(percentile(ttft, 99)), server_rss_mb=rss,
                hive_requests=sum(is_hive(i, hive_every) for i in range(requests)),
                errors=sorted({x.error for x in results if x.error})[:5])
            report.rounds.append(rr)
            if on_round is not None:
                on_round(rr)
        return report
    finally:
        await client.close()


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def write_json(report: LoadReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
