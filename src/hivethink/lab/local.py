"""Jobs computed in this process, up to K at a time (``hivethink lab run --concurrency K``).

Each job runs ``substrate.run`` in a thread of its own, at most ``concurrency`` at once, so K
samples' backend calls are in flight together: a local backend can put their rows into shared
forward passes, an OpenAI-compatible server gets K requests at once. Backends must therefore be
safe to call from several threads (the local, OpenAI and fake backends are).

The caller's thread starts the jobs (in grid order) and receives their outcomes in the order they
complete, and stays the only writer of the run directory (:func:`hivethink.lab.store.write_sample`):
nothing else changes about durability, so resume and kill -9 behave as with one job at a time.
Results do not depend on K: every sample is seeded by its own seed, whatever runs beside it.

The threads are daemons: when the caller stops early (Ctrl-C, a write that fails), the jobs still
running are abandoned, their results never written, and they run again next time; the process
does not wait for them to exit.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator

from hivethink.backends.base import Backend
from hivethink.lab.grid import Job, Plan
from hivethink.lab.sample import Outcome, execute_job


def run_local(
    plan: Plan,
    backends: dict[int, Backend],
    jobs: list[Job],
    started: Callable[[Job], None],
    concurrency: int = 1,
) -> Iterator[list[Outcome]]:
    """Compute ``jobs``, at most ``concurrency`` at once; yield each job's outcomes as it ends.

    ``started`` is called (in the caller's thread) as each job starts. An exception escaping a
    job (a bug: ``execute_job`` records a sample's own failures) is raised here.
    """
    waiting = deque(jobs)
    done: queue.Queue[list[Outcome] | BaseException] = queue.Queue()

    def work(job: Job) -> None:
        try:
            done.put(execute_job(plan, job, backends[job.samples[0].model]))
        except BaseException as err:  # handed to the caller, which raises it
            done.put(err)

    running = 0
    while waiting or running:
        while waiting and running < concurrency:
            job = waiting.popleft()
            started(job)
            threading.Thread(target=work, args=(job,), name="lab-job", daemon=True).start()
            running += 1
        outcome = done.get()
        running -= 1
        if isinstance(outcome, BaseException):
            raise outcome
        yield outcome
