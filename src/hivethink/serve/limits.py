"""What one request may ask of the server, and the checks that hold a request to it.

Everything a client controls is bounded: the body size, ``n``, the tokens per choice, the
number of stop strings, the hive's workers and passes, and how many multi-worker jobs may be
running or waiting at once. A request over a bound gets a 4xx answer, never a truncated run.
"""

from __future__ import annotations

from dataclasses import dataclass

from hivethink.engine.hive import MAX_WORKERS
from hivethink.errors import HivethinkError


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 1_000_000  # larger bodies: 413
    max_n: int = 4  # choices per request
    max_tokens: int = 2048  # per choice; also the most passes (max_steps) of a hive job
    default_max_tokens: int = 512  # when the request names none (capped by the context left)
    max_workers: int = 8  # hive workers per request
    max_stop: int = 4  # stop strings per request
    max_stop_chars: int = 256  # characters per stop string
    max_hive_jobs: int = 4  # hive jobs running or waiting; more: 429
    poll_s: float = 0.5  # how often a non-streaming request checks for a client that hung up

    def validate(self) -> None:
        for name in ("max_body_bytes", "max_n", "max_tokens", "default_max_tokens", "max_workers",
                     "max_stop", "max_stop_chars", "max_hive_jobs"):
            if getattr(self, name) < 1:
                raise HivethinkError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_workers > MAX_WORKERS:
            raise HivethinkError(f"max-workers must be at most {MAX_WORKERS}, got {self.max_workers}")
        if not self.poll_s > 0:
            raise HivethinkError("the disconnect poll interval must be positive")
