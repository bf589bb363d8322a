"""Run untrusted Python (model-written code, its tests) in a confined child process.

:func:`run_python` writes the program's files into a fresh temporary directory and runs the
program there in a new interpreter (``python -I``, :mod:`hivethink.sandbox_child`) with:

- kernel-enforced limits (``setrlimit``): CPU seconds (SIGXCPU, then SIGKILL), address space
  (allocation fails with MemoryError), size of any file written (EFBIG), no core dumps, and a
  process/thread count (``RLIMIT_NPROC``, 1 by default: no new process or thread). The kernel
  does not apply that count to root, so a child started by root runs as uid/gid 65534
  ("nobody", via ``setpriv``) where that user can start this interpreter; that also keeps it
  out of root's files and other processes' ``/proc/*/environ``. Where it cannot, the child
  runs as root of a user namespace of its own, with no privilege outside it;
- a wall-clock deadline: past it the whole process group is killed;
- an environment of a few fixed variables (``PATH``, ``HOME`` = the work directory, ``LANG``):
  nothing of the parent's, so no keys or tokens;
- no network: where ``unshare`` can make a network namespace (root, or unprivileged user
  namespaces), the child runs in one with no interface up (kernel-enforced); always, an audit
  hook (PEP 578) refuses every socket operation and every attempt to start a process, signal
  another one or load native code through ``ctypes``.

What is not guaranteed: the audit hook and the status report live inside the child, so
deliberately adversarial code (one that digs through interpreter frames or writes C
extensions' memory) can get past them where the kernel does not stop it (no network
namespace; no process count for root; a child that runs as its caller's user can read that
user's files). This is a harness for
model-written code, as HumanEval's is, not a jail for hostile code.

Every run ends as one :class:`RunResult` with a ``status``: ``ok`` (ran to the end), or how it
failed: ``syntax_error``, ``exception`` (a test failure is an ``AssertionError`` here),
``exit`` (the program ended the interpreter itself), ``timeout``, ``cpu_limit``,
``memory_limit``, ``file_limit``, ``killed`` (another signal), or ``error`` (the sandbox could
not start). ``blocked`` lists the refused operations (``socket.__new__``, ``os.fork``...).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hivethink.errors import HivethinkError

CHILD = Path(__file__).with_name("sandbox_child.py")
NOBODY = 65534
STATUSES = (
    "ok", "syntax_error", "exception", "exit", "timeout", "cpu_limit", "memory_limit",
    "file_limit", "killed", "error",
)  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``processes`` counts every process and thread of the user the
    child runs as (so 1 forbids any new one)."""

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 16
    processes: int = 1
    output_chars: int = 20_000  # kept of stdout and of stderr each

    def __post_init__(self) -> None:
        if min(self.wall_s, self.cpu_s) <= 0 or min(self.memory_mb, self.file_mb, self.processes) < 1:
            raise HivethinkError(f"sandbox limits must be positive: {self}")


@dataclass
class RunResult:
    status: str
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # "AssertionError: ..." for an exception, else what went wrong
    traceback: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    wall_s: float = 0.0
    blocked: list[str] = field(default_factory=list)
    network: str = "audit-hook"  # how sockets were kept out: "netns" (and the hook) or the hook

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        """One line: the status and its reason."""
        why = self.error or (f"signal {self.signal}" if self.signal else "")
        if self.blocked:
            why = f"{why}; blocked {', '.join(sorted(set(self.blocked)))}".lstrip("; ")
        return f"{self.status}: {why}" if why else self.status


def _works(command: list[str]) -> bool:
    try:
        done = subprocess.run(command, capture_output=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


PROBE = "import json, socket, subprocess, threading, unittest"


@functools.cache
def _child_mode() -> tuple[tuple[str, ...], bool]:
    """How children start on this machine: the command prefix (a network namespace of their
    own where ``unshare`` works: not where it is missing or a container's seccomp policy
    refuses it; as root, then ``setpriv`` to uid/gid 65534), and whether they run as 65534.

    Root drops to 65534 only where that user can still start this interpreter and import the
    standard library (a probe run says so). Otherwise the child gets a user namespace as well
    where one can be made: root inside it holds no privilege outside (it cannot read other
    processes' ``/proc/*/environ``), and unprivileged users need one for the network namespace.
    """
    tool = shutil.which("unshare")
    root = os.geteuid() == 0
    netns: tuple[str, ...] = ()
    if tool is not None and root and _works([tool, "--net", "--", "true"]):
        netns = (tool, "--net", "--")
    setpriv = shutil.which("setpriv")
    if root and setpriv is not None:
        drop = (*netns, setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")
        if run_python(PROBE, limits=Limits(wall_s=30, cpu_s=30), _mode=(drop, True)).ok:
            return drop, True
    if tool is not None and _works([tool, "--map-root-user", "--net", "--", "true"]):
        return (tool, "--map-root-user", "--net", "--"), False
    return netns, False


def network_isolation() -> str:
    """``netns`` when children get a network namespace of their own, else ``audit-hook``."""
    return "netns" if _child_mode()[0] else "audit-hook"


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise HivethinkError(f"sandbox: file name {name!r} must be a relative path inside the work directory")
    return path


def _read(path: Path, limit: int) -> str:
    with open(path, "rb") as f:
        data = f.read(limit * 4 + 4)
    return data.decode("utf-8", "replace")[:limit]


def run_python(
    program: str,
    *,
    files: dict[str, str] | None = None,
    path: list[str] | None = None,
    limits: Limits | None = None,
    filename: str = "main.py",
    _mode: tuple[tuple[str, ...], bool] | None = None,
) -> RunResult:
    """Run ``program`` (Python source) in the sandbox; ``files`` are written into the work
    directory first (relative names, e.g. ``{"src/game.py": code}``) and ``path`` entries
    (relative) go on ``sys.path``, after the work directory itself. Never raises for anything
    the program does."""
    limits = limits or Limits()
    prefix, drop = _mode or _child_mode()
    network = "netns" if "--net" in prefix else "audit-hook"
    root = Path(tempfile.mkdtemp(prefix="hivethink-sandbox-"))
    try:
        work, out = root / "work", root / "out"
        work.mkdir()
        out.mkdir(mode=0o700)
        for name, text in (files or {}).items():
            target = work / _safe_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if drop:  # the work directory is the child's own, nothing else is
            root.chmod(0o711)
            for p in [work, *work.rglob("*")]:
                os.chown(p, NOBODY, NOBODY)
        return _run(program, work, out, path or [], limits, filename, prefix, network)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(program: str, work: Path, out: Path, path: list[str], limits: Limits, filename: str,
         prefix: tuple[str, ...], network: str) -> RunResult:
    nonce = secrets.token_hex(16)
    spec = {
        "program": program, "filename": filename, "cwd": str(work), "path": path,
        "nonce": nonce, "cpu_s": limits.cpu_s, "memory_bytes": limits.memory_mb << 20,
        "file_bytes": limits.file_mb << 20, "processes": limits.processes,
    }  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
    read_fd, write_fd = os.pipe()
    spec["status_fd"] = write_fd
    command = [*prefix, sys.executable, "-I", str(CHILD)]
    start = time.perf_counter()
    with open(out / "stdout", "wb") as stdout, open(out / "stderr", "wb") as stderr:
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, env=env,
                cwd=str(work), pass_fds=(write_fd,), start_new_session=True,
            )  # fmt: skip
        except OSError as err:
            os.close(read_fd)
            os.close(write_fd)
            return RunResult("error", error=f"cannot start the sandbox: {err}", network=network)
        os.close(write_fd)
        timed_out = False
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write((json.dumps(spec) + "\n").encode("utf-8", "surrogatepass"))
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)
    wall = time.perf_counter() - start
    with os.fdopen(read_fd, "rb") as status_pipe:
        lines = status_pipe.read(1 << 20).decode("utf-8", "replace").splitlines()
    report = _report(lines, nonce)
    result = RunResult(
        status="error",
        stdout=_read(out / "stdout", limits.output_chars),
        stderr=_read(out / "stderr", limits.output_chars),
        wall_s=round(wall, 3),
        network=network,
    )
    code = proc.returncode
    if report is not None:
        result.blocked = [str(b) for b in report.get("blocked", [])]
        result.error = report.get("error")
        result.traceback = report.get("traceback")
    if timed_out:
        result.status, result.error = "timeout", f"no result after {limits.wall_s:g} s (killed)"
    elif code is not None and code < 0:
        sig = signal.Signals(-code)
        result.signal = sig.name
        result.status = {"SIGXCPU": "cpu_limit", "SIGXFSZ": "file_limit"}.get(sig.name, "killed")
        if result.status == "cpu_limit":
            result.error = f"CPU time limit of {limits.cpu_s:g} s"
    elif report is not None:
        result.status = str(report.get("status"))
        result.exit_code = report.get("exit_code", code)
        if result.status == "exit" and result.error is None:
            result.error = f"the program ended the interpreter (exit code {result.exit_code})"
        if result.status not in STATUSES:
            result.status, result.error = "error", f"unknown status {report.get('status')!r}"
    else:  # the interpreter ended before the child could report: os._exit and the like
        result.status, result.exit_code = "exit", code
        result.error = f"the program ended the interpreter before finishing (exit code {code})"
        if code == 1 and "MemoryError" in result.stderr:
            result.status, result.error = "memory_limit", "MemoryError"
    return result


def _report(lines: list[str], nonce: str) -> dict | None:
    """The child's last status line carrying the run's nonce (a program printing look-alikes
    into the pipe cannot know it)."""
    for line in reversed(lines):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("nonce") == nonce:
            return value
    return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left of the child's process group and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


__all__ = ["Limits", "RunResult", "STATUSES", "network_isolation", "run_python"]
