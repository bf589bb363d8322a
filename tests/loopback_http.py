"""A scripted HTTP server on 127.0.0.1 for tests of clients that must survive bad servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"  # answer nothing until the server closes (or hang_s passes)
DROP = "drop"  # close the connection without an answer

# respond(json body of a POST) -> (status, payload text), HANG or DROP
Respond = Callable[[dict], "tuple[int, str] | str"]


class LoopbackServer:
    """Answers every POST with ``respond(body)``; ``url`` ends in ``/v1`` (OpenAI clients)."""

    def __init__(self, respond: Respond, *, hang_s: float = 5.0) -> None:
        self.release = threading.Event()
        release = self.release

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                answer = respond(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                if answer == HANG:
                    release.wait(timeout=hang_s)
                    return
                if answer == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, payload = answer
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_completion(model: str, content: object, usage: object) -> str:
    """The JSON text of a one-choice ``chat.completion`` response."""
    return json.dumps({
        "id": "c", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": usage,
    })  # fmt: skip
