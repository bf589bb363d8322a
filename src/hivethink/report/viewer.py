"""``hivethink lab view``: one page to browse a run's samples and read any trace as the workers saw it.

The page is a table of samples (filters: substrate, task, N, score) and, for the chosen sample,
its trace: a shared-cache run as the workers side by side, one row per stretch of forward passes
(a row ends where any worker ends a line); a text protocol as rounds, each event with who wrote
it, to whom it went and who saw it; then the answers, the score and the detected pathologies.

Everything the page shows is computed here (:func:`trace_view`, :func:`sample_row`); the script
in ``viewer_assets`` only draws it, with text nodes (never HTML), so model text stays text. The
page is written as ``RUN/view.html`` with every trace inside, and served on 127.0.0.1 with the
traces fetched one at a time (:class:`ViewerServer`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hivethink.display import clean_text
from hivethink.errors import HivethinkError
from hivethink.lab.store import read_results, read_trace
from hivethink.report.build import run_name
from hivethink.report.data import PATHOLOGIES, Record
from hivethink.trace import Event

VIEW = "view.html"
MAX_EMBEDDED = 500  # samples whose traces go into view.html (the server has them all)
MAX_TEXT = 20_000  # characters of one text (a prompt, a generation) the page holds
ROW_PASSES = 32  # longest stretch of forward passes in one row of a shared-cache trace
# Metrics shown with the score (when a record has them), besides the pathology counts.
FACTS = ("correct", "sequential_passes", "tokens", "wall_s", "agreement", "agreed_but_wrong",
         "flipped", "timeout", "redundancy", "references_per_agent", "checks")  # fmt: skip


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    """Model or file text as the page may hold it: control characters made visible, clipped."""
    text = clean_text(str(value))
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def sample_row(record: Record) -> dict[str, Any]:
    """What the sample table shows of one results record (unknown fields are ignored)."""
    metrics = record.get("metrics") or {}
    pathologies = {p.removeprefix("patho_"): int(v) for p in PATHOLOGIES
                   if (v := _num(metrics.get(p))) is not None and v > 0}
    return {
        "key": str(record["key"]),
        "index": record.get("index"),
        "model": _text(record.get("model", ""), 200),
        "substrate": _text(record.get("substrate", ""), 200),
        "task": _text(record.get("task", ""), 200),
        "workers": record.get("workers"),
        "seed": record.get("seed"),
        "instance": _text(record.get("instance", ""), 200),
        "score": _num(record.get("score")),
        "answer": None if record.get("answer") is None else _text(record["answer"], 2000),
        "error": None if not record.get("error") else _text(record["error"], 2000),
        "pathologies": pathologies,
        "facts": {k: v for k in FACTS if (v := metrics.get(k)) is not None},
        "finished_by": _text((record.get("info") or {}).get("finished_by", ""), 100) or None,
    }


def _passes(events: Sequence[Event]) -> dict[str, Any]:
    """Shared-cache workers side by side: rows of forward passes, each cell the text a worker
    wrote in those passes as ``[text, forced]`` pieces, plus its step/check/answer marks."""
    workers = list(dict.fromkeys(e.worker for e in events if e.kind == "token"))
    by_pass: dict[int, list[Event]] = {}
    for ev in events:
        if ev.kind in ("token", "step", "check", "answer") and ev.worker in workers:
            by_pass.setdefault(ev.step if ev.step is not None else -1, []).append(ev)
    rows: list[dict[str, Any]] = []
    row: dict[str, Any] | None = None
    for p in sorted(by_pass):
        if row is None:
            row = {"from": p, "to": p, "cells": {w: [] for w in workers}, "marks": []}
        row["to"] = p
        line_ended = False
        for ev in by_pass[p]:
            if ev.kind == "token":
                cell = row["cells"][ev.worker]
                forced = bool(ev.data.get("forced"))
                if cell and cell[-1][1] == forced:
                    cell[-1][0] += clean_text(ev.text)  # one piece per run of sampled/forced
                else:
                    cell.append([clean_text(ev.text), forced])
                line_ended = line_ended or "\n" in ev.text
            else:
                row["marks"].append({"worker": ev.worker, "kind": ev.kind, "pass": p,
                                     "text": _text(ev.text, 500) if ev.kind == "answer" else "",
                                     "answer": _text(ev.data.get("answer", ""), 20)})
        if line_ended or row["to"] - row["from"] + 1 >= ROW_PASSES:
            rows.append(row)
            row = None
    if row is not None:
        rows.append(row)
    return {"workers": workers, "rows": rows}


def _seen_by(events: Sequence[Event]) -> list[list[str]]:
    """For each event, who saw it: each agent whose next prompt after it holds its writer's
    texts (and, for a message, only its recipients). One backward walk over the trace."""
    next_seen: dict[str, list[str]] = {}  # agent -> the ``seen`` of its next prompt
    out: list[list[str]] = [[] for _ in events]
    for i in range(len(events) - 1, -1, -1):
        ev = events[i]
        if ev.kind == "prompt":
            next_seen[ev.worker] = ev.seen or []
            continue
        out[i] = [agent for agent, seen in next_seen.items()
                  if agent != ev.worker and ev.worker in seen
                  and (ev.recipients is None or agent in ev.recipients)]
    return out


# Event data worth a word next to the event: key -> label (flags show their label alone).
_DETAILS = {"reason": "reason", "value": "value", "entry_kind": "entry", "phase": "phase",
            "retry": "retry", "finish_reason": "finish", "tokens": "tokens", "abstain": "abstains",
            "role": "role", "none": "no answer", "finisher": "asked by the finisher"}  # fmt: skip


def _details(ev: Event) -> list[str]:
    """The event's data as short labels; a value the event's text already shows is left out."""
    out = []
    for key, label in _DETAILS.items():
        value = ev.data.get(key)
        if value is None or value is False or str(value) == ev.text:
            continue
        out.append(label if value is True else f"{label} {_text(value, 200)}")
    return out


def _rounds(events: Sequence[Event]) -> dict[str, Any]:
    """A text protocol as rounds (the events' ``step``), events in trace order; events without a
    round (final answers) come last."""
    groups: dict[int | None, list[dict[str, Any]]] = {}
    seen_by = _seen_by(events)
    order = {name: i for i, name in enumerate(dict.fromkeys(e.worker for e in events))}
    for i, ev in enumerate(events):
        if ev.kind == "token":
            continue
        item: dict[str, Any] = {
            "kind": ev.kind, "worker": _text(ev.worker, 100), "text": _text(ev.text),
            "to": [_text(r, 100) for r in ev.recipients] if ev.recipients else None,
            "seen": [_text(s, 100) for s in ev.seen] if ev.seen is not None else None,
            "details": _details(ev),
        }
        if ev.kind in ("step", "message", "post"):
            item["seen_by"] = sorted(seen_by[i], key=lambda a: order.get(a, len(order)))
        groups.setdefault(ev.step, []).append(item)
    rounds = [{"round": r, "events": groups[r]} for r in sorted(k for k in groups if k is not None)]
    if None in groups:
        rounds.append({"round": None, "events": groups[None]})
    return {"rounds": rounds}


def trace_view(events: Sequence[Event]) -> dict[str, Any]:
    """One trace as the page draws it: ``passes`` (an engine run, with token events) or
    ``rounds`` (a text protocol); the shared prompt and the team's answer either way."""
    events = list(events)
    prompt = next((e for e in events if e.kind == "prompt" and e.worker == "all"), None)
    team = [e for e in events if e.kind == "answer" and e.worker == "team"]
    view: dict[str, Any] = {
        "prompt": None if prompt is None else _text(prompt.text),
        "team": None if not team else _text(team[-1].text, 2000),
        "events": len(events),
    }
    if any(e.kind == "token" for e in events):
        answers = [e for e in events if e.kind == "answer" and e.worker != "team"]
        return {**view, "layout": "passes", **_passes(events),
                "answers": [{"worker": _text(e.worker, 100), "text": _text(e.text, 2000),
                             "finisher": bool(e.data.get("finisher"))} for e in answers]}
    return {**view, "layout": "rounds", **_rounds([e for e in events if e is not prompt])}


def _trace_or_note(run_dir: Path, record: Record) -> dict[str, Any]:
    try:
        return trace_view(read_trace(run_dir, record))
    except (OSError, HivethinkError, KeyError) as err:
        return {"layout": "missing", "note": _text(f"trace unreadable: {err}", 500)}


def viewer_data(run_dir: str | Path, *, embed: bool) -> dict[str, Any]:
    """Everything the page needs: the run's name, a row per sample and, with ``embed``, the
    traces of the first :data:`MAX_EMBEDDED` samples (by grid index)."""
    run_dir = Path(run_dir)
    records = sorted(read_results(run_dir), key=lambda r: (_num(r.get("index")) or 0, str(r["key"])))
    data: dict[str, Any] = {
        "run": _text(run_name(run_dir), 200),
        "samples": [sample_row(r) for r in records],
        "traces": None,
    }
    if embed:
        data["traces"] = {str(r["key"]): _trace_or_note(run_dir, r) for r in records[:MAX_EMBEDDED]}
        data["embedded_all"] = len(records) <= MAX_EMBEDDED
    return data


# --- the page ----------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return (resources.files("hivethink.report") / "viewer_assets" / name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _json_in_html(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment (``<``, ``>``, ``&``
    escaped as JSON unicode escapes, which the JSON parser reads back unchanged)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_html(data: dict[str, Any], *, served: bool) -> str:
    """The whole page: data as inert JSON, the script and style allowed by hash alone (a string
    in the data that looks like markup can neither run nor style anything)."""
    script, style = _asset("viewer.js"), _asset("viewer.css")
    connect = "'self'" if served else "'none'"  # the served page fetches traces, the file cannot
    csp = (f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
           f"connect-src {connect}")
    title = f"hivethink: {data['run']}".replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{title}</title><style>{style}</style></head><body>"
        '<div id="app"><p>This page needs JavaScript.</p></div>'
        f'<script type="application/json" id="hivethink-data">{_json_in_html(data)}</script>'
        f"<script>{script}</script></body></html>\n"
    )


def write_viewer(run_dir: str | Path) -> Path:
    """Write ``RUN/view.html`` (every trace inside, up to :data:`MAX_EMBEDDED` samples)."""
    run_dir = Path(run_dir)
    path = run_dir / VIEW
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page_html(viewer_data(run_dir, embed=True), served=False), encoding="utf-8")
    tmp.replace(path)
    return path


# --- the local server --------------------------------------------------------------------------


class ViewerServer(ThreadingHTTPServer):
    """Serves one run on 127.0.0.1: ``/`` the page, ``/api/trace/KEY`` one trace as JSON.

    Only loopback is bound, only those two paths answer, a trace is looked up by the keys of the
    results file (never a path from the request), and a request whose Host header is not this
    server's is refused (a web page elsewhere cannot read a run through DNS rebinding).
    """

    daemon_threads = True

    def __init__(self, run_dir: str | Path, port: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.records = {str(r["key"]): r for r in read_results(self.run_dir)}
        try:
            super().__init__(("127.0.0.1", port), _Handler)
        except OSError as err:
            raise HivethinkError(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def page(self) -> bytes:
        # read afresh for each page load: a run still being written shows its new samples
        self.records = {str(r["key"]): r for r in read_results(self.run_dir)}
        return page_html(viewer_data(self.run_dir, embed=False), served=True).encode("utf-8")

    def trace(self, key: str) -> bytes | None:
        record = self.records.get(key)
        if record is None:
            return None
        return json.dumps(_trace_or_note(self.run_dir, record), ensure_ascii=False).encode("utf-8")

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests; the CLI calls ``serve_forever`` itself)."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows the URL, not a line per request

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.headers.get("Host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            self._send(HTTPStatus.FORBIDDEN, b"wrong Host\n", "text/plain")
            return
        path = urlsplit(self.path).path
        try:
            if path == "/":
                self._send(HTTPStatus.OK, self.server.page(), "text/html; charset=utf-8")
                return
            if path.startswith("/api/trace/"):
                body = self.server.trace(unquote(path.removeprefix("/api/trace/")))
                if body is not None:
                    self._send(HTTPStatus.OK, body, "application/json")
                    return
        except (OSError, HivethinkError) as err:  # the run directory changed under us
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"{err}\n".encode(), "text/plain")
            return
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
