"""The sandbox's child side: run as its own interpreter (``python -I sandbox_child.py``).

Reads one JSON line from stdin (limits, the program, its files, a nonce), confines itself, runs
the program and reports how it ended as one JSON line on the status pipe. Standard library
only, and never imported by hivethink: it must start fast and hold nothing of the parent.
See :mod:`hivethink.sandbox` for what is guaranteed and what is not.
"""

import errno
import json
import os
import resource
import signal
import sys
import traceback
import types

# Audit events (PEP 578) refused inside the sandbox: new processes, signals to other processes,
# native code and every socket operation.
PROCESS_EVENTS = (
    "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
    "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "os.setsid",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
)


def _limit(kind, value):
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):  # above the hard limit we were given: keep the lower one
        soft, hard = resource.getrlimit(kind)
        resource.setrlimit(kind, (min(value, hard), hard))


def _confine(spec):
    _limit(resource.RLIMIT_CORE, 0)
    cpu = max(1, int(spec["cpu_s"] + 0.999))
    try:  # SIGXCPU at the soft limit, SIGKILL one second later if it is ignored
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (ValueError, OSError):
        _limit(resource.RLIMIT_CPU, cpu)
    _limit(resource.RLIMIT_AS, spec["memory_bytes"])
    _limit(resource.RLIMIT_FSIZE, spec["file_bytes"])
    # Past the file size limit a write fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _limit(resource.RLIMIT_NPROC, spec["processes"])
    os.chdir(spec["cwd"])
    for extra in reversed(spec.get("path", [])):
        sys.path.insert(0, os.path.join(spec["cwd"], extra))
    sys.path.insert(0, spec["cwd"])


def main():
    spec = json.loads(sys.stdin.readline())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    status_fd = spec["status_fd"]
    nonce = spec["nonce"]
    blocked: list[str] = []

    def report(status, **fields):
        line = json.dumps({"nonce": nonce, "status": status, "blocked": blocked, **fields})
        os.write(status_fd, (line + "\n").encode("utf-8", "replace"))

    try:
        _confine(spec)
    except OSError as err:
        report("error", error=f"cannot confine the child: {err}")
        return

    def hook(event, args):
        if event.startswith("socket.") or event in PROCESS_EVENTS:
            blocked.append(event)
            raise PermissionError(errno.EPERM, f"sandbox: {event} is not allowed")

    sys.addaudithook(hook)
    source = spec["program"]
    try:
        code = compile(source, spec["filename"], "exec")
    except (SyntaxError, ValueError) as err:  # ValueError: a NUL byte in the source
        report("syntax_error", error=f"{type(err).__name__}: {err}")
        return
    # The program is the real __main__ module (unittest.main() looks for its tests there).
    module = types.ModuleType("__main__")
    module.__file__ = spec["filename"]
    sys.modules["__main__"] = module
    try:
        exec(code, module.__dict__)
    except SystemExit as err:
        report("exit", exit_code=err.code if isinstance(err.code, int) else None)
    except MemoryError:
        report("memory_limit", error="MemoryError")
    except RecursionError as err:
        report("exception", error=f"RecursionError: {err}")
    except BaseException as err:  # noqa: BLE001 - anything the program raised is its result
        if isinstance(err, OSError) and err.errno == errno.EFBIG:
            report("file_limit", error=f"{type(err).__name__}: {err}")
            return
        tb = traceback.format_exception(type(err), err, err.__traceback__)
        report("exception", error=f"{type(err).__name__}: {err}"[:2000],
               traceback="".join(tb)[-4000:])
    else:
        report("ok")


if __name__ == "__main__":
    main()
