"""The ``openai`` backend inside a lab run, against a loopback server that misbehaves.

Each instance's prompt picks how the server treats every request for it: 500, hang (past the
client timeout), dropped connection, malformed JSON, non-text content (always: the sample fails
with the reason after the bounded retries), one 500 then a good answer (retried, succeeds),
lone surrogates and ANSI escapes in the text, nonsense token counts (succeed), or plain good
answers. The run finishes, in bounded time, with every sample recorded once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from hivethink.lab import load_config, read_results, read_trace, run_lab
from hivethink.tasks import get_task
from tests.loopback_http import DROP, HANG, LoopbackServer, chat_completion

MODES = ["500", "hang", "drop", "badjson", "nontext", "flaky", "surrogate", "usage", "ok"]
FAILING = {  # mode -> what the recorded reason must say
    "500": "500",
    "hang": "timed out",
    "drop": "Connection error",
    "badjson": "JSONDecodeError",
    "nontext": "not text",
}
TIMEOUT_S = 0.4
BACKOFF_S = 0.05
INSTANCES = get_task("math", steps=1).generate(len(MODES), 0)


class MisbehavingServer(LoopbackServer):
    """/v1/chat/completions on 127.0.0.1; the instance named in the request picks the mode."""

    def __init__(self) -> None:
        self.seen: dict[str, list[float]] = {mode: [] for mode in MODES}
        self.lock = threading.Lock()
        super().__init__(self.respond, hang_s=10)

    def respond(self, body: dict) -> tuple[int, str] | str:
        shown = "\n".join(m["content"] for m in body["messages"])
        index = next(i for i, inst in enumerate(INSTANCES) if inst.prompt in shown)
        mode = MODES[index]
        with self.lock:
            self.seen[mode].append(time.monotonic())
            attempt = len(self.seen[mode])
        if mode in (HANG, DROP):
            return mode
        answer = f"The answer is \\boxed{{{INSTANCES[index].target}}}."
        message: object = answer
        usage: object = {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}
        if mode == "surrogate":
            message = "\ud800 \x1b[31mred\x1b[0m " + answer
        elif mode == "nontext":
            message = {"parts": [answer]}
        elif mode == "usage":
            usage = {"prompt_tokens": "many", "completion_tokens": -3}
        payload = chat_completion(body["model"], message, usage)
        if mode == "500" or (mode == "flaky" and attempt == 1):
            return 500, json.dumps({"error": {"message": "exploded"}})
        if mode == "badjson":
            return 200, payload[: len(payload) // 2]
        return 200, payload


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    srv = MisbehavingServer()
    yield srv
    srv.close()


@pytest.mark.timeout(60)
def test_lab_run_over_a_failing_openai_server(server: MisbehavingServer, tmp_path: Path) -> None:
    grid = {
        "name": "faults",
        "models": [
            {
                "kind": "openai",
                "name": "loopback",
                "base_url": server.url,
                "model": "tiny",
                "timeout_s": TIMEOUT_S,
                "max_retries": 1,
                "backoff_s": BACKOFF_S,
            }
        ],
        "substrates": ["single"],
        "workers": [1],
        "tasks": [{"name": "math", "params": {"steps": 1}, "n": len(MODES)}],
        "budget": {"max_tokens": 32},
    }
    config = tmp_path / "faults.yaml"
    config.write_text(yaml.safe_dump(grid), encoding="utf-8")
    start = time.monotonic()
    summary = run_lab(load_config(config), tmp_path / "run", console=Console(quiet=True),
                      progress=False)
    elapsed = time.monotonic() - start
    assert elapsed < 20  # bounded: small timeouts, one retry each
    assert (summary.ran, summary.failed, summary.remaining) == (len(MODES), len(FAILING), 0)

    records = {r["instance"]: r for r in read_results(tmp_path / "run")}
    assert len(records) == len(MODES)
    for mode, inst in zip(MODES, INSTANCES, strict=True):
        rec = records[inst.id]
        if mode in FAILING:
            error = rec["error"]
            assert error.startswith("backend: 1 failed call(s); first: "), (mode, error)
            assert FAILING[mode] in error and "after 2 attempts" in error, (mode, error)
            assert "\n" not in error and len(error) < 400
            assert rec["metrics"]["backend_errors"] == 1
            assert rec["metrics"]["patho_format_failures"] == 0  # not the agent's fault
            assert rec["answer"] is None
            errors = [e for e in read_trace(tmp_path / "run", rec) if e.kind == "error"]
            assert [e.data["backend"] for e in errors] == [True]
            assert len(server.seen[mode]) == 2  # bounded: the first try and one retry
        else:
            assert rec["error"] is None, (mode, rec["error"])
            assert rec["score"] == 1.0 and rec["metrics"]["backend_errors"] == 0, mode
    gap = server.seen["500"][1] - server.seen["500"][0]
    assert gap >= BACKOFF_S  # the retry waited for its backoff
    assert len(server.seen["flaky"]) == 2 and len(server.seen["ok"]) == 1

    surrogate = records[INSTANCES[MODES.index("surrogate")].id]
    step = next(e for e in read_trace(tmp_path / "run", surrogate) if e.kind == "step")
    assert step.text.startswith("\ufffd ")  # a lone surrogate cannot be written: replaced
    usage = records[INSTANCES[MODES.index("usage")].id]
    assert usage["metrics"]["tokens"] == 4  # nonsense usage: a word count ("The answer is ...")
