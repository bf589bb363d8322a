"""The sandbox: hostile programs are stopped and recorded by kind, the next run goes on, and
correct code passes. The cases that wait for a CPU or wall-clock limit are marked slow."""

from __future__ import annotations

import os

import pytest

from hivethink.sandbox import Limits, network_isolation, run_python

FAST = Limits(wall_s=5, cpu_s=1, memory_mb=256, file_mb=2)


def test_correct_code_passes_and_prints():
    result = run_python("import helper\nprint(helper.VALUE * 2)", files={"helper.py": "VALUE = 21"}, limits=FAST)
    assert result.ok and result.stdout == "42\n" and result.blocked == []


@pytest.mark.parametrize(("program", "status", "detail"), [
    ("def f(:\n    pass", "syntax_error", "SyntaxError"),
    ("assert 1 + 1 == 3, 'arithmetic'", "exception", "AssertionError: arithmetic"),
    ("x = []\nwhile True:\n    x.append(bytearray(10**7))", "memory_limit", "MemoryError"),
    ("f = open('big', 'wb')\nwhile True:\n    f.write(b'0' * 10**6)", "file_limit", "File too large"),
    ("import sys\nsys.exit(0)", "exit", "exit code 0"),
    ("import os\nos._exit(0)", "exit", "before finishing"),
])  # fmt: skip
def test_failures_are_recorded_by_kind(program, status, detail):
    result = run_python(program, limits=FAST)
    assert result.status == status and detail in result.summary()
    assert not result.ok
    assert run_python("print('next')", limits=FAST).ok  # the next run goes on


def test_processes_and_sockets_are_refused():
    fork = run_python("import os\nos.fork()", limits=FAST)
    assert fork.status == "exception" and "os.fork" in fork.blocked
    spawn = run_python("import subprocess\nsubprocess.run(['true'])", limits=FAST)
    assert spawn.status == "exception" and "subprocess.Popen" in spawn.blocked
    sock = run_python("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))", limits=FAST)
    assert sock.status == "exception" and any(b.startswith("socket.") for b in sock.blocked)
    assert sock.network == network_isolation()
    # even where Python's socket API is not used, a network namespace leaves nothing to reach
    if network_isolation() == "netns":
        probe = "print(sorted(l.split(':')[0].strip() for l in open('/proc/self/net/dev').readlines()[2:]))"
        assert run_python(probe, limits=FAST).stdout.strip() == "['lo']"


def test_the_environment_holds_no_secret_of_the_parent(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak")
    program = "import os\nprint(sorted(os.environ))\nassert 'OPENAI_API_KEY' not in os.environ"
    result = run_python(program, limits=FAST)
    assert result.ok and "OPENAI_API_KEY" not in result.stdout
    parent = run_python(f"print(open('/proc/{os.getpid()}/environ').read())", limits=FAST)
    assert "sk-do-not-leak" not in parent.stdout


@pytest.mark.slow
def test_an_endless_loop_hits_the_cpu_limit_and_a_sleeper_the_wall_clock():
    loop = run_python("while True:\n    pass", limits=FAST)
    assert loop.status == "cpu_limit" and loop.signal == "SIGXCPU"
    sleeper = run_python("import time\ntime.sleep(60)", limits=Limits(wall_s=1.5, cpu_s=5))
    assert sleeper.status == "timeout" and 1.4 < sleeper.wall_s < 10
    assert run_python("print('after')", limits=FAST).ok


def test_file_names_must_stay_inside_the_work_directory():
    from hivethink.errors import HivethinkError

    with pytest.raises(HivethinkError, match="relative path"):
        run_python("pass", files={"../escape.py": "x"})
