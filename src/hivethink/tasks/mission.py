"""``mission``: open-ended tasks from a file, scored for quality in [0, 1] by an LLM judge.

The paper behind the self-organising protocols (Dochkina, arXiv 2603.28990; protocols.md §8)
scores synthetic open-ended "missions" at four difficulty levels with an LLM judge. Its missions
and judge prompt are not published, so both are ours: the missions come from a YAML file (our
own fixture format, below; ``file`` unset: the built-in ``tasks/missions/default.yaml``) and the
judge's prompt is the ``mission-judge`` prompt book (replaceable with ``--prompts``).

File format::

    missions:
      - text: Plan a picnic for six friends ...   # required: what the team is asked
        level: 1                                   # required: difficulty, 1 (easy) .. 4 (hard)
        id: picnic                                 # optional (default: mission-<position>)
        rubric: Covers food, drinks, ...           # optional: what the judge looks for

An instance is a *run*: ``run`` missions that the same team does one after another (one
sample), so that what carries over from task to task (the ``shared`` protocol's organisational
memory, the role stability index, a shock from a given task on) lives inside one sample and does
not depend on which samples a lab computes at once or resumes. ``data["run"]`` lists the
missions in order; ``prompt`` is the first one's text. With ``run > 1`` the task is meant only
for the ``self-organizing`` substrate (the one that runs a run); ``run: 1`` suits every text
substrate. Missions are drawn without replacement from the file in an order shuffled by the
instance seed (wrapping round when ``n * run`` exceeds the file), filtered by ``level`` if set.

Scoring: the task is *judged* (``judged = True``): the lab's judge (``judge:`` in a grid, any
backend) rates each mission's team deliverable on an integer scale 0..10 (quality = rating / 10),
and the sample's score is the mean over its run (:func:`judge_run`). A mission without a
deliverable scores 0 without asking the judge. A judge that fails is a per-sample error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hivethink import prompts
from hivethink.backends.base import Backend, GenRequest
from hivethink.errors import HivethinkError
from hivethink.tasks._common import instance_id, instance_rng, json_objects, params_of
from hivethink.tasks.base import Instance

BUILTIN = Path(__file__).parent / "missions" / "default.yaml"
LEVELS = (1, 2, 3, 4)
SCALE = 10  # the judge rates 0..SCALE; quality = rating / SCALE

BOOK = prompts.book(
    "mission-judge",
    {"judge": ["mission", "level", "rubric", "deliverable", "scale"], "no_rubric": []},
)
RATING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"rating": {"type": "integer", "minimum": 0, "maximum": SCALE}},
    "required": ["rating"],
    "additionalProperties": False,
}


class Mission(BaseModel):
    """One mission of a file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1)
    level: int = Field(ge=1, le=len(LEVELS))
    id: str | None = None
    rubric: str | None = None


def load_missions(path: Path) -> list[Mission]:
    """The missions of a file; any problem is one line naming the file and the mission."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HivethinkError(f"mission: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise HivethinkError(f"mission: {path}: cannot read: {err}") from None
    except yaml.YAMLError as err:
        raise HivethinkError(f"mission: {path}: invalid YAML: {str(err).splitlines()[0]}") from None
    items = raw.get("missions") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise HivethinkError(f"mission: {path}: expected a non-empty list under 'missions'")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise HivethinkError(f"mission: {path}: mission {i + 1} is not a mapping")
        try:
            mission = Mission.model_validate(item)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            what = "missing field" if first["type"] == "missing" else first["msg"]
            if first["type"] == "extra_forbidden":
                what = "unknown field"
            raise HivethinkError(f"mission: {path}: mission {i + 1}: {what} {where!r}") from None
        if not mission.text.strip():
            raise HivethinkError(f"mission: {path}: mission {i + 1}: empty 'text'")
        out.append(mission.model_copy(update={"id": mission.id or f"mission-{i + 1}"}))
    ids = [m.id for m in out]
    dup = sorted({x for x in ids if ids.count(x) > 1 and x is not None})
    if dup:
        raise HivethinkError(f"mission: {path}: duplicate mission id(s) {dup}")
    return out


@dataclass
class MissionTask:
    """Open-ended missions from ``file`` (default: the built-in set), ``run`` per instance,
    optionally only those of difficulty ``level``."""

    name = "mission"
    judged: ClassVar[bool] = True  # scored by the lab's LLM judge, not by :meth:`score`

    file: str | None = None
    run: int = 1
    level: int | None = None

    def __post_init__(self) -> None:
        if self.run < 1:
            raise HivethinkError(f"mission: run must be at least 1, got {self.run}")
        if self.level is not None and self.level not in LEVELS:
            raise HivethinkError(f"mission: level must be one of {LEVELS}, got {self.level}")
        path = Path(self.file).expanduser() if self.file is not None else BUILTIN
        missions = load_missions(path)
        if self.level is not None:
            missions = [m for m in missions if m.level == self.level]
            if not missions:
                raise HivethinkError(f"mission: {path}: no mission of level {self.level}")
        self.missions = missions
        # the file's content is part of every instance id: an edited file is new instances
        self.digest = hashlib.sha256(
            json.dumps([m.model_dump() for m in missions], sort_keys=True).encode()
        ).hexdigest()[:12]

    @property
    def substrates(self) -> tuple[str, ...] | None:
        """A run of several missions is meant for the substrate that runs runs."""
        return ("self-organizing",) if self.run > 1 else None

    def generate(self, n: int, seed: int) -> list[Instance]:
        params = {**params_of(self), "missions": self.digest}
        order = list(range(len(self.missions)))
        instance_rng(self.name, params, seed, -1).shuffle(order)
        out = []
        for i in range(n):
            picked = [
                self.missions[order[(i * self.run + j) % len(order)]] for j in range(self.run)
            ]
            run = [
                {"id": m.id, "level": m.level, "prompt": m.text, "rubric": m.rubric} for m in picked
            ]
            out.append(
                Instance(
                    task=self.name,
                    id=instance_id(self.name, params, seed, i),
                    prompt=picked[0].text,
                    target=None,
                    data={"run": run, "level": picked[0].level},
                )
            )
        return out

    def extract(self, text: str) -> str | None:
        """A deliverable is the whole text (None when blank)."""
        return text.strip() or None

    def score(self, instance: Instance, answer: str | None) -> float:
        """No deliverable scores 0 (as the judge scores it); a deliverable only the judge can."""
        if answer is None or not answer.strip():
            return 0.0
        raise HivethinkError(
            "mission: deliverables are scored by the LLM judge (judge: in a grid), not by a rule"
        )


def run_missions(instance: Instance) -> list[Instance]:
    """The tasks a run instance holds, in order (``data["run"]``), each as an :class:`Instance`
    of its own; an instance of any other task is a run of one (itself)."""
    run = instance.data.get("run")
    if not run:
        return [instance]
    return [
        Instance(
            task=instance.task,
            id=f"{instance.id}/{j}",
            prompt=str(m["prompt"]),
            data={"level": m.get("level"), "rubric": m.get("rubric"), "mission": m.get("id")},
        )
        for j, m in enumerate(run)
    ]


def judge_prompt(mission: dict[str, Any], deliverable: str, max_chars: int) -> str:
    """The judge's prompt for one mission's deliverable (cut in the middle past ``max_chars``)."""
    if len(deliverable) > max_chars:
        half = max_chars // 2
        deliverable = deliverable[:half] + "\n[... cut ...]\n" + deliverable[-half:]
    rubric = mission.get("rubric") or BOOK.render("no_rubric")
    return BOOK.render(
        "judge",
        mission=mission["prompt"],
        level=mission["level"],
        rubric=rubric,
        deliverable=deliverable,
        scale=SCALE,
    )


_RATING = re.compile(r"-?\d+(?:\.\d+)?")


def parse_rating(text: str) -> float | None:
    """Quality in [0, 1] from the judge's reply: ``{"rating": k}``, else the first number in the
    text; a rating outside 0..SCALE is no rating (None)."""
    objects = json_objects(text)
    value: Any = objects[0].get("rating") if objects else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        match = _RATING.search(text)
        value = float(match.group()) if match else None
    if value is None or not 0 <= value <= SCALE:
        return None
    return float(value) / SCALE


def judge_run(
    backend: Backend,
    instance: Instance,
    deliverables: Sequence[str | None],
    *,
    max_tokens: int = 32,
    temperature: float = 0.0,
    constrained: bool = True,
    max_chars: int = 6000,
) -> dict[str, Any]:
    """Rate each mission of ``instance``'s run against its deliverable (all in one batched call).

    -> ``{"qualities": [q or None], "quality": mean or None, "raw": [reply], "error": str or
    None}``. A missing deliverable (fewer than the run's missions, or None) is quality 0 without a
    call. ``error`` is set when a call failed or a reply held no rating (the sample then has no
    score); ``constrained`` asks for ``{"rating": k}`` by JSON schema (the local engine constrains
    its decoding, an OpenAI-compatible server gets it as ``response_format``)."""
    missions = list(instance.data.get("run") or [])
    if not missions:
        raise HivethinkError(f"instance {instance.id}: not a mission run (no data['run'])")
    given = list(deliverables)[: len(missions)]
    given += [None] * (len(missions) - len(given))
    asked = [j for j, d in enumerate(given) if d and d.strip()]
    requests = [
        GenRequest(
            messages=[
                {"role": "user", "content": judge_prompt(missions[j], str(given[j]), max_chars)}
            ],
            max_tokens=max_tokens,
            temperature=temperature,
            json_schema=RATING_SCHEMA if constrained else None,
        )
        for j in asked
    ]
    completions = backend.generate(requests) if requests else []
    qualities: list[float | None] = [0.0] * len(missions)
    raw: list[str | None] = [None] * len(missions)
    errors = []
    for j, completion in zip(asked, completions, strict=True):
        raw[j] = completion.text
        quality = None if completion.error else parse_rating(completion.text)
        if completion.error:
            errors.append(f"mission {j + 1}: {completion.error}")
        elif quality is None:
            errors.append(f"mission {j + 1}: no rating 0..{SCALE} in the reply")
        qualities[j] = quality
    scored = [q for q in qualities if q is not None]
    return {
        "qualities": qualities,
        "quality": None if errors else sum(scored) / len(scored),
        "raw": raw,
        "error": "; ".join(errors) or None,
    }
