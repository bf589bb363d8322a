"""The trace viewer's data, page and local server (the browser test is test_viewer_browser.py)."""

from __future__ import annotations

import http.client
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from viewer_run import HOSTILE, chat_events, debate_events, shared_cache_events, write_run  # noqa: E402

from hivethink.cli.main import main  # noqa: E402
from hivethink.report.viewer import (  # noqa: E402
    VIEW,
    ViewerServer,
    page_html,
    sample_row,
    trace_view,
    viewer_data,
    write_viewer,
)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


def test_shared_cache_trace_aligned_by_forward_pass():
    view = trace_view(shared_cache_events())
    assert view["layout"] == "passes" and view["workers"] == ["Alice", "Bob"]
    assert view["prompt"] == "What is 17 * 23?" and view["team"] == "391"
    rows = view["rows"]
    # a row ends at the pass where a worker ends a line (Alice, pass 2), the rest is one row
    assert [(r["from"], r["to"]) for r in rows] == [(0, 2), (3, 6)]
    assert rows[0]["cells"]["Alice"] == [["**Alice [1]:** ", True], ["17*23 = 391.\n", False]]
    assert rows[0]["cells"]["Bob"] == [["**Bob [1]:** ", True], ["I check it", False]]
    assert rows[1]["cells"]["Bob"] == [[" too", False], ["Am I redundant? ", True], ["yes!", False]]
    marks = {(m["worker"], m["kind"], m["pass"]) for m in rows[1]["marks"]}
    assert marks == {("Bob", "check", 4), ("Alice", "step", 5), ("Alice", "answer", 5), ("Bob", "answer", 6)}
    assert next(m for m in rows[1]["marks"] if m["kind"] == "check")["answer"] == "yes"
    assert [(a["worker"], a["finisher"]) for a in view["answers"]] == [("Alice", False), ("Bob", True)]
    # model text kept as written, minus terminal escape sequences
    assert rows[1]["cells"]["Alice"] == [["So " + HOSTILE.removesuffix("\x1b[31m") + " \\boxed{391}", False]]


def test_text_protocol_as_rounds_with_who_saw_what():
    view = trace_view(debate_events())
    assert view["layout"] == "rounds" and view["prompt"] is None
    assert [r["round"] for r in view["rounds"]] == [0, 1, None]  # final answers last
    first, second, answers = view["rounds"]
    steps = [e for e in first["events"] if e["kind"] == "step"]
    # round 0 texts reach the other debater in its round-1 prompt (seen=[other])
    assert [(e["worker"], e["seen_by"]) for e in steps] == [("Alice", ["Bob"]), ("Bob", ["Alice"])]
    assert [e["seen_by"] for e in second["events"] if e["kind"] == "step"] == [[], []]  # nobody after
    prompts = [e for e in second["events"] if e["kind"] == "prompt"]
    assert [p["seen"] for p in prompts] == [["Bob"], ["Alice"]]
    assert steps[0]["details"] == ["finish stop", "tokens 5"]
    assert [e["worker"] for e in answers["events"]] == ["Alice", "Bob", "team"]


def test_messages_are_seen_only_by_their_recipients():
    view = trace_view(chat_events())
    events = view["rounds"][0]["events"]
    alice_msg = next(e for e in events if e["kind"] == "message" and e["worker"] == "Alice")
    bob_msg = next(e for e in events if e["kind"] == "message" and e["worker"] == "Bob")
    assert alice_msg["to"] == ["Bob"] and alice_msg["seen_by"] == ["Bob"]
    assert bob_msg["to"] == ["Carol"] and bob_msg["seen_by"] == ["Carol"]
    alice_step = next(e for e in events if e["kind"] == "step")
    assert alice_step["seen_by"] == ["Bob"]  # Carol's next prompt holds Bob's texts only
    vote = next(e for e in view["rounds"][1]["events"] if e["kind"] == "vote")
    assert vote["details"] == []  # the value is the vote's text already
    error = next(e for e in view["rounds"][0]["events"] if e["kind"] == "error")
    assert error["details"] == ["reason format"]


def test_sample_rows_tolerate_new_fields_and_use_the_metrics(run: Path):
    data = viewer_data(run, embed=True)
    assert data["run"] == "viewer-fixture" and data["embedded_all"] is True
    rows = {s["key"]: s for s in data["samples"]}
    assert [s["key"] for s in data["samples"]] == ["a1", "b2", "c3", "d4"]
    assert rows["a1"]["pathologies"] == {"loops": 2}  # zero counts left out
    assert rows["a1"]["facts"] == {"correct": 1.0, "sequential_passes": 6, "tokens": 14}
    assert rows["a1"]["finished_by"] == "answer"
    assert rows["d4"]["error"].startswith("RuntimeError: <script>") and rows["d4"]["score"] is None
    assert set(data["traces"]) == {"a1", "b2", "c3", "d4"}
    assert sample_row({"key": "x"})["workers"] is None  # an old or partial record still shows


def test_missing_trace_is_a_note_not_a_crash(run: Path):
    (run / "traces" / "b2.jsonl").unlink()
    data = viewer_data(run, embed=True)
    assert data["traces"]["b2"]["layout"] == "missing"
    assert "trace unreadable" in data["traces"]["b2"]["note"]


def test_page_holds_the_data_inertly(run: Path):
    page = page_html(viewer_data(run, embed=True), served=False)
    # the only elements are the page's own: model text cannot end the data block or add tags
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<img" not in page and "</pre>" not in page and HOSTILE not in page
    block = re.search(r'<script type="application/json" id="hivethink-data">(.*?)</script>', page, re.S)
    data = json.loads(block.group(1))
    assert data["samples"][3]["error"].startswith("RuntimeError: <script>alert(1)</script>")
    csp = re.search(r'Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp and "connect-src 'none'" in csp


def test_write_viewer(run: Path):
    path = write_viewer(run)
    assert path == run / VIEW and path.read_text().startswith("<!DOCTYPE html>")


def _get(server: ViewerServer, path: str, host: str | None = None) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{server.server_address[1]}")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response.getheader("Content-Type") or ""


def test_server_serves_the_page_and_traces_by_key_only(run: Path):
    server = ViewerServer(run, port=0)
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        status, body, kind = _get(server, "/")
        assert status == 200 and kind.startswith("text/html")
        assert "connect-src 'self'" in body.decode()
        status, body, kind = _get(server, "/api/trace/a1")
        assert status == 200 and kind == "application/json"
        assert json.loads(body)["layout"] == "passes"
        for path in ("/api/trace/zz", "/api/trace/../results.jsonl", "/results.jsonl", "/view.html",
                     "/api/trace/%2e%2e%2fconfig.json"):
            assert _get(server, path)[0] == 404, path
        assert _get(server, "/", host="evil.example:80")[0] == 403  # DNS rebinding
    finally:
        server.shutdown()
        server.server_close()


def test_cli_writes_the_page(run: Path, capsys):
    assert main(["lab", "view", str(run), "--no-serve"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run / VIEW}"


@pytest.mark.parametrize("args", [["lab", "view", "/no/such/run", "--no-serve"],
                                  ["lab", "view", "RUN", "--port", "70000"]])
def test_cli_bad_input_is_one_line(args, run: Path, capsys):
    args = [str(run) if a == "RUN" else a for a in args]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
