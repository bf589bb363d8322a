"""Lab samples computed on Ray (``hivethink lab run --ray``); this process stays the only writer.

Division of labour:

- **The driver** (the process running :func:`hivethink.lab.runner.run_lab`) expands the grid,
  reads ``results.jsonl`` to know what is finished, and writes every trace and results line
  itself, in the order the samples complete (a ``ray.wait`` loop). Resuming after a kill -9 of
  the driver therefore works exactly as for a local run: nothing a Ray worker does touches the
  run directory, and a sample whose result never reached the driver simply runs again.
- **Ray workers** compute one job at a time (one sample, or a snapshot substrate's budgets of
  one sample) with :func:`hivethink.lab.sample.execute_job` (the same function a local run
  calls) and return the trace events and results records.

Backends are built once per worker by making the worker an **actor** (:class:`SampleWorker`)
that owns one model's backend for its whole life, rather than by a cached module-level factory
inside plain tasks. Reasons: Ray kills idle task workers, and by default retires a GPU task's
worker after every call (``max_calls=1``), so a per-process cache would reload the model again
and again; a task worker can also serve any model, so a cache would pile several models into
one GPU. An actor holds its ``num_gpus`` / ``num_cpus`` share while it lives, loads its model
exactly once, and is killed when its model's samples are done, which frees the GPU for the next
model. The models of a grid run one after another, each on a pool of as many actors as the
cluster can place at once (never more than that model has jobs to run). A sample whose actor
dies (out of memory, a lost node) is not recorded: it is reported as lost and the next run
computes it again; the dead actor is replaced by a new one (at most once per pool slot). The
prompt books of the run (``prompts:``) are activated in each worker as it starts; the directory
must be readable there (a shared file system, as for the models).
"""

from __future__ import annotations

import logging
import re
import socket
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any

from rich.console import Console

from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.lab.config import RaySpec
from hivethink.lab.grid import Factories, Job, Plan
from hivethink.lab.sample import Outcome, activate_prompts, build_backend, execute_job

LOCAL = "local"  # address meaning "start a Ray instance on this machine for this run"
LOCAL_NUM_CPUS = 2  # a small sandbox: run `ray start --head` and `--ray auto` for a big machine
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line :class:`HivethinkError` telling how to install it."""
    try:
        import ray
    except ImportError:
        raise HivethinkError(
            "Ray is not installed; install it with: pip install hivethink[ray]"
        ) from None
    return ray


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _summary(err: BaseException, width: int = 160) -> str:
    """One line for a Ray error: its first line, plus the last one (usually the cause), without
    Ray's colours, each cut to ``width`` characters."""
    lines = [_ANSI.sub("", line).strip() for line in str(err).splitlines()]
    lines = [line if len(line) <= width else line[: width - 3] + "..." for line in lines if line]
    if not lines:
        return type(err).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast when a ``host:port`` or ``ray://host:port`` address does not answer: Ray itself
    keeps retrying such an address for minutes. Other forms (``auto``) are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise HivethinkError(f"cannot connect to Ray at {address}: {reason}") from None


@contextmanager
def ray_session(spec: RaySpec) -> Iterator[ModuleType]:
    """Connect to Ray for the length of a run.

    A process already connected (``ray.init`` called before, as the tests do) keeps its
    connection and it is not shut down. Otherwise ``address`` ``None``/``"local"`` starts a small
    local instance (2 CPUs, no dashboard, a 200 MB object store), any other address is joined;
    either is shut down (or disconnected) at the end.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = spec.address
    local = address is None or address == LOCAL
    try:
        if address is None or address == LOCAL:
            ray.init(
                address=LOCAL,
                num_cpus=LOCAL_NUM_CPUS,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                logging_level=logging.WARNING,
            )
        else:
            check_reachable(address)
            ray.init(address=address, logging_level=logging.WARNING)
    except HivethinkError:
        raise
    except Exception as err:
        where = "start a local Ray instance" if local else f"connect to Ray at {spec.address}"
        raise HivethinkError(f"cannot {where}: {_summary(err)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


class SampleWorker:
    """One model's backend, built once, computing jobs one at a time (a Ray actor).

    The prompt books are activated and the backend is built in ``__init__``; a failure there is
    kept and reported by :meth:`ready` (so the driver can stop the run with the same one-line
    message a local run gives) instead of killing the actor with a traceback.
    """

    def __init__(self, plan: Plan, model: int, factories: Factories) -> None:
        self.plan = plan
        self.backend: Backend | None = None
        self.error: str | None = None
        try:
            activate_prompts(plan.config.prompts)
            self.backend = build_backend(plan.config.models[model], factories)
        except HivethinkError as err:
            self.error = str(err)

    def ready(self) -> str | None:
        """``None`` once the backend is built, else the reason it could not be."""
        return self.error

    def run(self, indices: list[int], snapshot: bool) -> list[Outcome]:
        """Compute the job of the samples at grid positions ``indices`` (never raises for a
        failing sample)."""
        assert self.backend is not None  # the driver sends no job to a worker that is not ready
        job = Job([self.plan.samples[i] for i in indices], snapshot)
        return execute_job(self.plan, job, self.backend)


def pool_size(ray: ModuleType, spec: RaySpec, pending: int) -> int:
    """How many workers fit on the cluster at once (capped by ``pending``), node by node.

    A worker needing more CPUs or GPUs than any node has is an error now rather than a run that
    waits forever. With ``num_cpus = num_gpus = 0`` each node takes as many workers as it has CPUs.
    """
    needs = {"CPU": spec.num_cpus, "GPU": spec.num_gpus}
    try:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    except Exception:  # e.g. an older Ray Client without nodes(): the cluster as one node
        nodes = [ray.cluster_resources()]
    fits = 0
    for resources in nodes:
        counts = [
            int(resources.get(name, 0) / need + 1e-9) for name, need in needs.items() if need > 0
        ]
        fits += min(counts) if counts else max(1, int(resources.get("CPU", 1)))
    if fits == 0:
        raise HivethinkError(
            f"no Ray node has {spec.num_cpus:g} CPU and {spec.num_gpus:g} GPU for one worker "
            "(see --ray-cpus/--ray-gpus)"
        )
    return max(1, min(fits, pending))


class RayRun:
    """The jobs of a run computed on Ray: iterate to get each job's ``(sample, events, record)``
    list in the order they complete. ``lost`` counts samples whose worker died before returning
    them."""

    def __init__(
        self,
        ray: ModuleType,
        plan: Plan,
        factories: Factories,
        todo: list[Job],
        spec: RaySpec,
        started: Callable[[Job], None],
        console: Console,
    ) -> None:
        self.ray, self.plan, self.factories, self.todo = ray, plan, factories, todo
        self.spec, self.started, self.console = spec, started, console
        self.lost = 0
        self._actors: list[Any] = []

    def __iter__(self) -> Iterator[list[Outcome]]:
        plan_ref = self.ray.put(self.plan)  # shipped once, shared by every worker
        models = sorted({j.samples[0].model for j in self.todo})  # grid order: models outermost
        for model in models:
            queue = deque(j for j in self.todo if j.samples[0].model == model)
            try:
                yield from self._model(plan_ref, model, queue)
            finally:
                self.close()

    def _model(self, plan_ref: Any, model: int, queue: deque[Job]) -> Iterator[list[Outcome]]:
        """Run one model's samples on a fresh pool of workers (the ``ray.wait`` loop)."""
        ray, spec = self.ray, self.spec
        label = self.plan.config.models[model].label
        worker = ray.remote(SampleWorker).options(
            num_cpus=spec.num_cpus,
            num_gpus=spec.num_gpus,
            # No Ray restarts (they would need the plan pinned for them, which Ray warns about):
            # a dead worker is replaced below, at most ``spare`` times per model.
            max_restarts=0,
            scheduling_strategy="SPREAD",
        )
        # ref -> (worker, the job it computes; None for "is the backend built?")
        inflight: dict[Any, tuple[Any, Job | None]] = {}

        def start() -> None:
            actor = worker.remote(plan_ref, model, self.factories)
            self._actors.append(actor)
            inflight[actor.ready.remote()] = (actor, None)

        size = pool_size(ray, spec, len(queue))
        for _ in range(size):
            start()
        spare = size  # how many dead workers may be replaced
        last_death = ""
        # Stop once the queue is empty and no job is out: workers still waiting for resources
        # are not waited for.
        while queue or any(job is not None for _, job in inflight.values()):
            if not inflight:
                raise HivethinkError(
                    f"model {label!r}: every Ray worker died ({last_death}); "
                    "run the same command again to resume"
                )
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            actor, job = inflight.pop(ref)
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as err:  # the worker died (or never started)
                last_death = _summary(err)
                if job is not None:
                    self._lose(job, err)
                if spare and queue:
                    spare -= 1
                    start()
                continue
            except ray.exceptions.RayError as err:  # the worker lives on; this result is lost
                if job is not None:
                    self._lose(job, err)
            else:
                if job is None and value is not None:  # the backend could not be built
                    raise HivethinkError(value)
                if job is not None:
                    yield value
            if queue:
                nxt = queue.popleft()
                self.started(nxt)
                indices = [s.index for s in nxt.samples]
                inflight[actor.run.remote(indices, nxt.snapshot)] = (actor, nxt)

    def _lose(self, job: Job, err: BaseException) -> None:
        self.lost += len(job.samples)
        keys = ("sample " if len(job.samples) == 1 else "samples ") + ", ".join(
            s.key for s in job.samples
        )
        self.console.print(
            f"{keys} lost (its Ray worker failed: {_summary(err)}); "
            "it runs again next time"
        )

    def close(self) -> None:
        """Kill the current pool's workers (their models' memory is freed at once)."""
        for actor in self._actors:
            with suppress(Exception):  # already dead, or the connection is gone
                self.ray.kill(actor)
        self._actors = []


@contextmanager
def run_on_ray(
    plan: Plan,
    factories: Factories,
    todo: list[Job],
    spec: RaySpec,
    started: Callable[[Job], None],
    console: Console,
) -> Iterator[RayRun]:
    """Connect to Ray (:func:`ray_session`) and compute ``todo`` there; on exit, kill the
    workers and shut Ray down if this run started it."""
    with ray_session(spec) as ray:
        run = RayRun(ray, plan, factories, todo, spec, started, console)
        try:
            yield run
        finally:
            run.close()
