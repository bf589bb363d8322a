"""The results record: one typed, versioned line of ``results.jsonl`` per finished sample.

Every record says which code made it: ``schema_version`` (this module's :data:`SCHEMA_VERSION`;
records written before it existed have none and read as version 0), the ``hivethink`` version
and, when the package runs from a git checkout, the ``commit`` (``-dirty`` appended when the
package's files differ from it: edited, or new and not committed), and ``prompts_digest``, the hash of the prompt books its
substrate used (:func:`hivethink.prompts.digest` over the substrate's ``prompt_books``). When
some of those books hold the authors' own texts (a directory made by ``hivethink prompts
import``), ``published_texts`` names them: the digest of the directory's ``SOURCE.json`` and,
per book, the authors' ``repo@commit`` (or ``package==version``); otherwise it is null. Schema
version 2 added it.

Records are validated when written and when read back (:class:`ResultRecord`). A record of a
newer schema than this code knows cannot be read: one error, whatever the command.

Resuming a run (:func:`compare`): the finished records the run would skip must agree with the
code now running, or the run refuses, in one line, unless ``--allow-mixed``. *Disagree* means:

- a different ``schema_version`` (an older record does not say everything a new one says, e.g.
  version 0 has no prompts digest, so it cannot be shown to agree), or
- a different ``prompts_digest`` than the substrate's books give now (a changed prompt file, or
  another ``--prompts`` directory): the samples would measure different prompts.

A different hivethink version or commit does **not** block: the commit changes with every edit of
the code, most of which change no result, and a run that refused on each would teach users to
pass ``--allow-mixed`` always, hiding the prompt check. It is printed as a note, and every record
keeps its own version and commit, so the report can tell them apart. With ``--allow-mixed`` the
run goes on and every record it writes lists the disagreements in ``mixed``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from hivethink import prompts
from hivethink.errors import HivethinkError, validation_message
from hivethink.lab.grid import Plan

SCHEMA_VERSION = 2
MAX_REASONS = 3  # disagreements named in one error line


class ResultRecord(BaseModel):
    """One results line. Fields a hook adds (a judge's verdict, say) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = 0  # absent in records written before versioning
    key: str
    index: int
    model: str
    substrate: str
    task: str
    workers: int
    instance: str
    seed: int
    budget: int | None = None  # the value from the grid's ``budgets`` list
    cell: dict[str, Any]
    score: float | None = None
    answer: str | None = None
    agent_answers: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    trace: str
    events: int = 0
    lab_wall_s: float | None = None
    finished_at: str | None = None
    hivethink: str | None = None
    commit: str | None = None
    prompts_digest: str | None = None
    published_texts: dict[str, Any] | None = None  # the imports behind the books (version 2)
    mixed: list[str] = Field(default_factory=list)  # what it was resumed over (--allow-mixed)
    # Written only when set (a line without them reads back without them): the task's typed
    # outcome, the defect attribution, the quality judge's and the MAST judge's verdicts.
    outcome: dict[str, Any] | None = None
    defects: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    mast: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _WHEN_SET:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data

    def line(self) -> dict[str, Any]:
        """The record as its JSON line holds it."""
        return self.model_dump(mode="json")


_WHEN_SET = ("outcome", "defects", "judge", "mast")


def parse_record(raw: dict[str, Any], where: str) -> ResultRecord:
    """Validate one line read back; a newer schema or a bad field: one-line HivethinkError."""
    version = raw.get("schema_version", 0)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise HivethinkError(
            f"{where}: written by a newer hivethink (record schema {version}; this one reads "
            f"schemas up to {SCHEMA_VERSION}): upgrade hivethink to read this run"
        )
    try:
        return ResultRecord.model_validate(raw)
    except ValidationError as err:
        raise HivethinkError(f"{where}: not a valid results record: {validation_message(err)}") from None


def checked(record: ResultRecord) -> dict[str, Any]:
    """A record about to be written as its line, validated as it will read back (a hook may
    have set a field to a value of the wrong type)."""
    try:
        return ResultRecord.model_validate(record.line()).line()
    except ValidationError as err:
        raise HivethinkError(
            f"sample {getattr(record, 'key', None)}: results record does not validate: "
            f"{validation_message(err)}"
        ) from None


def _git(where: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None


@functools.cache
def code_version() -> tuple[str, str | None]:
    """(hivethink version, git commit of the checkout it runs from, else None); once a process.

    The commit counts only when the repository around the package tracks the package's files
    (an installed package inside someone else's repository is not a checkout of hivethink)."""
    try:
        version = importlib.metadata.version("hivethink")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    package = Path(__file__).resolve().parents[1]
    tracked = _git(package, "ls-files", "--", ".")
    head = _git(package, "rev-parse", "HEAD")
    if tracked is None or not tracked.stdout.strip() or head is None or head.returncode:
        return version, None
    # a new module not yet committed changes the code as much as an edited one
    status = _git(package, "status", "--porcelain", "--", str(package))
    dirty = status is None or bool(status.stdout.strip())
    return version, head.stdout.strip() + ("-dirty" if dirty else "")


def prompts_digest(substrate: Any) -> str:
    """The hash of the prompt books ``substrate`` uses (its ``prompt_books``), as they are now."""
    names = tuple(getattr(substrate, "prompt_books", ()))
    try:
        return prompts.digest(names)
    except KeyError as err:
        raise HivethinkError(
            f"substrate {getattr(substrate, 'name', substrate)!r}: {err.args[0]} "
            "(its prompt_books name a book no module declares)"
        ) from None


def provenance(substrate: Any) -> dict[str, Any]:
    """The fields that say which code and prompts made a record."""
    version, commit = code_version()
    return {
        "schema_version": SCHEMA_VERSION,
        "hivethink": version,
        "commit": commit,
        "prompts_digest": prompts_digest(substrate),
        "published_texts": prompts.published(getattr(substrate, "prompt_books", ())),
    }


@dataclass
class Comparison:
    """Finished records against the running code: ``blocking`` disagreements refuse a resume
    (unless allowed), ``notes`` are only printed (see the module docstring)."""

    blocking: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _counted(counter: Counter[str], now: str) -> list[str]:
    return [f"{value} in {n} record(s), now {now}" for value, n in sorted(counter.items())]


def compare(records: list[ResultRecord], plan: Plan) -> Comparison:
    """What the finished records of ``plan``'s samples disagree on with the code running now
    (records of samples that are not in the plan are not resumed and not compared)."""
    in_plan = {s.key: s for s in plan.samples}
    digests = [prompts_digest(s) for s in plan.substrates]
    version, commit = code_version()
    schemas: Counter[str] = Counter()
    changed: dict[int, Counter[str]] = {}  # substrate index -> digests of its records
    makers: Counter[str] = Counter()
    for record in records:
        sample = in_plan.get(record.key)
        if sample is None:
            continue
        if record.schema_version != SCHEMA_VERSION:
            schemas[str(record.schema_version)] += 1
            continue  # an older record's other fields say nothing comparable
        if record.prompts_digest != digests[sample.substrate]:
            changed.setdefault(sample.substrate, Counter())[str(record.prompts_digest)] += 1
        if (record.hivethink, record.commit) != (version, commit):
            makers[f"hivethink {record.hivethink} (commit {record.commit or 'none'})"] += 1
    result = Comparison()
    result.blocking += [f"schema {c}" for c in _counted(schemas, str(SCHEMA_VERSION))]
    for index, counter in sorted(changed.items()):
        label = plan.config.substrates[index].display
        result.blocking += [
            f"substrate {label!r} prompts {c}" for c in _counted(counter, digests[index])
        ]
    result.notes += [
        f"{n} finished sample(s) were made by {maker}; this is hivethink {version} "
        f"(commit {commit or 'none'})"
        for maker, n in sorted(makers.items())
    ]
    return result


def refusal(run_dir: Path, blocking: list[str]) -> str:
    """The one line that refuses to resume over disagreeing records."""
    shown = "; ".join(blocking[:MAX_REASONS])
    more = f"; and {len(blocking) - MAX_REASONS} more" if len(blocking) > MAX_REASONS else ""
    return (
        f"{run_dir}: finished samples disagree with this code ({shown}{more}); "
        "--allow-mixed adds to them anyway (the new records say so), or use a new --out"
    )
