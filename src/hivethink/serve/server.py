"""Run the app with uvicorn: in the foreground (``hivethink serve``) or on a background thread
(tests and ``hivethink bench serve``), always one process."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from hivethink.errors import HivethinkError


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str, max_connections: int | None) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                          limit_concurrency=max_connections, timeout_graceful_shutdown=10,
                          server_header=False, lifespan="off")


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one); any failure is one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise HivethinkError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise HivethinkError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve_forever(app: Any, sock: socket.socket, *, log_level: str = "info",
                  max_connections: int | None = None) -> None:
    """Serve on ``sock`` (from :func:`bind`) until interrupted (Ctrl-C / SIGTERM)."""
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level=log_level,
                                           max_connections=max_connections))
    server.run(sockets=[sock])


class BackgroundServer:
    """The app on a uvicorn event loop in a daemon thread, on ``host`` and a free port (or ``port``).

    ``with BackgroundServer(app) as url: ...`` where ``url`` is ``http://HOST:PORT``.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 max_connections: int | None = None) -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.max_connections = max_connections
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, timeout_s: float = 30) -> str:
        sock = bind(self.host, self.port)
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn_config(self.app, host=self.host, port=port, log_level=self.log_level,
                                                     max_connections=self.max_connections))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="hivethink-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise HivethinkError("the server did not start")
            time.sleep(0.02)
        self.url = f"http://{self.host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_served_name(model: str | None) -> str:
    """The name clients use for ``model``: "smollm2" for the embedded one, a directory's or
    file's name for a local path, the hub id otherwise."""
    from pathlib import Path

    from hivethink.models.loader import EMBEDDED_NAMES

    if model is None or model.lower() in EMBEDDED_NAMES:
        return "smollm2"
    p = Path(model).expanduser()
    if p.exists():
        return p.name.removesuffix(".gguf") or model
    return model
