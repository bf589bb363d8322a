"""Lab configuration: one YAML file describing a grid of samples, validated by pydantic.

Example::

    name: quick
    models:
      - {kind: local, model: smollm2, dtype: bfloat16}     # every key but kind/name -> backend
    substrates: [independent, {name: debate, params: {temperature: 0.5}}, single]
    workers: [2, 3]
    tasks:
      - {name: arith, params: {digits: 2}, n: 2, substrates: [independent, single]}
    seeds: [0, 1]
    budget: {max_tokens: 64, rounds: 2}
    budgets: [256, 512, 1024]    # optional: each sample at each of these budgets (see below)
    prompts: my-prompts          # optional: replacement prompt books (relative to this file)
    ray: {address: auto, num_gpus: 0.5}    # optional: run the samples on Ray (docs/cluster.md)
    mast: {judge: {kind: openai, base_url: ..., model: ...}}   # optional: the MAST LLM judge
    judge: {model: {kind: local, model: smollm2}}   # the quality judge of judged tasks (mission)

Unknown keys are errors everywhere except inside a model entry (its extra keys are the
backend's parameters) and inside ``params`` mappings (checked by the task/substrate itself).

``budgets`` (strictly increasing, positive) runs every sample once per value ``b``: its budget is
``budget`` with ``passes = b`` (``budget.match: passes``, the default) or ``tokens = b``
(``match: tokens``), so each value is its own grid cell; ``budget`` must then leave the matched
field unset. ``prompts`` is a directory of prompt books replacing the built-in ones
(:mod:`hivethink.prompts`); ``hivethink lab run --prompts DIR`` overrides it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hivethink.errors import HivethinkError, validation_message

MAX_WORKERS = 256  # most workers one sample may have (agree/graph instances bring their own)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(BaseModel):
    """A backend: ``kind`` ("local", "openai", "echo", ...) plus its parameters as extra keys."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(min_length=1)
    name: str | None = None  # label in tables; default: the ``model`` parameter, else the kind

    @property
    def params(self) -> dict[str, Any]:
        """The keyword arguments for ``get_backend(kind, **params)``."""
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        """The model in tables and records: a quantized ``weights`` mode shows beside it."""
        weights = self.params.get("weights", "exact")
        base = str(self.params.get("model", self.kind))
        return self.name or (base if weights == "exact" else f"{base} ({weights})")


class SubstrateSpec(_Strict):
    """A substrate by registry name, with parameters; a plain string is shorthand for the name.

    ``workers`` overrides the global worker counts for this substrate (e.g. ``[2]`` for a pair).
    """

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    workers: list[int] | None = None
    label: str | None = None  # defaults to the name; must be unique

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or min(value) < 1 or max(value) > MAX_WORKERS):
            raise ValueError(f"must be a non-empty list of integers from 1 to {MAX_WORKERS}")
        return value

    @property
    def display(self) -> str:
        return self.label or self.name


class TaskSpec(_Strict):
    """A task by registry name: ``n`` instances generated from ``instance_seed``.

    ``substrates`` (labels) restricts which substrates run on this task; default: all of them.
    """

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(default=1, ge=1)
    instance_seed: int = 0
    substrates: list[str] | None = None

    @property
    def label(self) -> str:
        """``name``, or ``name(k=v, ...)`` when the task has parameters."""
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"


class BudgetSpec(_Strict):
    """Mirrors :class:`hivethink.substrates.base.Budget`; ``match`` says which of ``passes`` and
    ``tokens`` the values of the top-level ``budgets`` list set."""

    max_tokens: int = Field(default=256, ge=1)
    rounds: int = Field(default=3, ge=1)
    passes: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    match: Literal["passes", "tokens"] = "passes"

    def cell(self) -> dict[str, Any]:
        """The budget as the sample keys hash it: ``match`` is left out (it only says where the
        ``budgets`` values go, and those are in ``passes``/``tokens`` already), so adding it did
        not change the keys of existing runs."""
        return self.model_dump(exclude={"match"})


class RaySpec(_Strict):
    """Where and how samples run on Ray (``hivethink lab run --ray``; see docs/cluster.md).

    ``address``: ``None`` or ``"local"`` starts a small local Ray instance for the run;
    ``"auto"`` joins the cluster this machine is part of (``ray start``); ``"ray://host:10001"``
    connects through Ray Client; ``"host:6379"`` joins a cluster by its GCS address.
    ``num_gpus`` / ``num_cpus``: the resources each Ray worker holds while it runs samples
    (fractions allowed: ``num_gpus: 0.25`` puts four workers on one GPU).
    """

    address: str | None = None
    num_gpus: float = Field(default=0, ge=0)
    num_cpus: float = Field(default=1, ge=0)

    @field_validator("address")
    @classmethod
    def _non_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a Ray address, 'auto' or 'local'")
        return value.strip() if value is not None else None


class MastSpec(_Strict):
    """The MAST judge run over every finished sample's trace (:func:`hivethink.lab.judge.mast_judge`,
    the taxonomy in :mod:`hivethink.metrics.mast`):
    ``judge`` is a model entry like those under ``models`` (any backend); the labels go into
    each results line under ``mast``. ``max_chars`` cuts long traces in the middle (default:
    the whole trace, as published); ``parse`` is "published" or the "lines" variant;
    ``taxonomy`` names the modes as the authors' judge prompt does ("published") or as the paper
    does ("paper", the prompt book ``mast-paper``)."""

    judge: ModelSpec
    max_tokens: int = Field(default=1024, ge=1)
    max_chars: int | None = Field(default=None, ge=1000)
    temperature: float = Field(default=1.0, ge=0)
    parse: Literal["published", "lines"] = "published"
    taxonomy: Literal["published", "paper"] = "published"


class JudgeSpec(_Strict):
    """The LLM judge that scores judged tasks (``mission``; :mod:`hivethink.tasks.mission`):
    ``model`` is a model entry like those under ``models`` (any backend; the same entry as a
    model of the grid shares that model's backend). It rates each deliverable 0..10 in one reply
    of at most ``max_tokens`` tokens; ``constrained`` asks for the JSON reply by schema;
    deliverables longer than ``max_chars`` are cut in the middle."""

    model: ModelSpec
    max_tokens: int = Field(default=32, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    constrained: bool = True
    max_chars: int = Field(default=6000, ge=200)


class LabConfig(_Strict):
    """The whole grid: models x substrates x workers x tasks x instances x seeds."""

    name: str | None = None
    models: list[ModelSpec] = Field(min_length=1)
    substrates: list[SubstrateSpec] = Field(min_length=1)
    workers: list[int] = Field(default_factory=lambda: [2], min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    budgets: list[int] | None = None  # each sample at each budget (module docstring)
    prompts: str | None = None  # a directory of prompt books (module docstring)
    ray: RaySpec | None = None  # run on Ray by default (the command line can override it)
    mast: MastSpec | None = None  # label every sample's trace with the MAST judge
    judge: JudgeSpec | None = None  # score the deliverables of judged tasks (mission)

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if min(value) < 1 or max(value) > MAX_WORKERS:
            raise ValueError(f"worker counts must be between 1 and {MAX_WORKERS}")
        return value

    @field_validator("budgets")
    @classmethod
    def _increasing(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (
            not value or value[0] < 1 or any(b <= a for a, b in itertools.pairwise(value))
        ):
            raise ValueError(
                f"must be a non-empty, strictly increasing list of positive integers, got {value}"
            )
        return value

    @field_validator("prompts")
    @classmethod
    def _non_empty_path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a directory of prompt books")
        return value

    @model_validator(mode="after")
    def _cross_check(self) -> LabConfig:
        for what, labels in (
            ("model", [m.label for m in self.models]),
            ("substrate", [s.display for s in self.substrates]),
        ):
            dup = sorted({x for x in labels if labels.count(x) > 1})
            if dup:
                raise ValueError(
                    f"duplicate {what} label(s) {dup}: give each a distinct name/label"
                )
        if self.budgets is not None and getattr(self.budget, self.budget.match) is not None:
            raise ValueError(
                f"budget.{self.budget.match} and budgets both set the {self.budget.match} budget: "
                f"drop one (or set budget.match to the other kind)"
            )
        known = {s.display for s in self.substrates}
        for task in self.tasks:
            unknown = sorted(set(task.substrates or ()) - known)
            if unknown:
                raise ValueError(
                    f"task {task.name!r} lists unknown substrate(s) {unknown} (known: {sorted(known)})"
                )
        return self


def parse_config(data: Any, source: str = "config") -> LabConfig:
    """Validate a mapping; any problem becomes a one-line :class:`HivethinkError`."""
    if not isinstance(data, dict):
        raise HivethinkError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return LabConfig.model_validate(data)
    except ValidationError as err:
        raise HivethinkError(f"{source}: {validation_message(err)}") from None


def load_config(path: str | Path) -> LabConfig:
    """Read and validate a YAML config file (missing file, bad YAML, bad schema: HivethinkError)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HivethinkError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise HivethinkError(f"{path}: cannot read: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise HivethinkError(f"{path}: invalid YAML{where}: {problem}") from None
    config = parse_config(data, str(path))
    if config.prompts is not None:  # a path in the file is relative to the file
        config.prompts = str(path.parent / Path(config.prompts).expanduser())
    return config


def resolve_ray(
    config: LabConfig,
    address: str | None = None,
    num_gpus: float | None = None,
    num_cpus: float | None = None,
) -> RaySpec | None:
    """The Ray settings of a run: the config's ``ray:`` section with the command line on top.

    ``None`` (run in this process) unless ``address`` is given or the config has a ``ray:``
    section; ``num_gpus`` / ``num_cpus`` alone are an error (they only mean something on Ray).
    """
    if address is None and config.ray is None:
        if num_gpus is not None or num_cpus is not None:
            raise HivethinkError(
                "--ray-gpus/--ray-cpus need --ray (or a ray: section in the config)"
            )
        return None
    base = (config.ray or RaySpec()).model_dump()
    given = {"address": address, "num_gpus": num_gpus, "num_cpus": num_cpus}
    try:
        return RaySpec.model_validate(base | {k: v for k, v in given.items() if v is not None})
    except ValidationError as err:
        raise HivethinkError(f"ray: {validation_message(err)}") from None
