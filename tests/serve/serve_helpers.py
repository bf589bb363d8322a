"""A real server for the serve tests: the app on uvicorn in a thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hivethink.engine.scheduler import Engine
from hivethink.serve import BackgroundServer, ServeLimits, create_app

MODEL = "smollm2"


@dataclass
class Running:
    url: str  # http://127.0.0.1:PORT
    engine: Engine

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@contextmanager
def running_server(model: Any, *, api_key: str | None = None, limits: ServeLimits | None = None,
                   max_batch: int = 8, max_waiting: int = 256) -> Iterator[Running]:
    engine = Engine(model, max_rows=max_batch, max_waiting=max_waiting).start()
    try:
        app = create_app(engine, MODEL, api_key=api_key, limits=limits)
        with BackgroundServer(app) as url:
            yield Running(url, engine)
    finally:
        engine.close()


def request(url: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            method: str | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of one raw HTTP request (4xx/5xx included)."""
    req = urllib.request.Request(url + path, data=body, method=method or ("POST" if body is not None else "GET"))
    for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def post_json(url: str, obj: Any, **kw: Any) -> tuple[int, Any]:
    return request(url, "/v1/chat/completions", json.dumps(obj).encode(), **kw)


class OpenStream:
    """A streaming request on a raw socket, read a few events at a time; closing it hangs up."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        host, port = url.removeprefix("http://").split(":")
        data = json.dumps(body).encode()
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        self.seen = b""

    def read_events(self, n: int) -> bytes:
        while self.seen.count(b"data: ") < n:
            got = self.sock.recv(4096)
            if not got:
                break
            self.seen += got
        return self.seen

    def close(self) -> None:
        self.sock.close()


def wait_idle(server: Running, timeout_s: float = 20) -> bool:
    """True once the engine runs and queues nothing and every KV block is freed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.engine.load == (0, 0) and not server.engine.cache.blocks:
            return True
        time.sleep(0.05)
    return False
