"""The hive's configuration: one pydantic model that ``hivethink solve``, the server's
``"hivethink"`` extension field and the ``shared-cache`` substrate all use (field descriptions
are the CLI's help). The defaults are the pinned reference's (eqimp/hogwild_llm at 1a87a99,
protocols.md §1 "read from the code"); each option that departs from it says so."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hivethink.errors import HivethinkError, validation_message
from hivethink.names import NAMES

if TYPE_CHECKING:
    from hivethink.models.loader import LoadedModel

MAX_WORKERS = len(NAMES)

LayoutName = Literal["combined", "interleaved", "contiguous", "independent"]
Visibility = Literal["instant", "lagged"]
StepEnd = Literal["fenced", "reference-code", "text"]
Sampling = Literal["model", "greedy"]
Think = Literal["template", "vocab"]
Extract = Literal["float", "task"]
Suggestions = Literal["with-examples", "always"]

# What a run (a grid cell, a request) decides rather than the hive's method: the ``shared-cache``
# substrate takes these from the lab, every other field is one of its parameters.
RUN_FIELDS = ("workers", "max_steps", "seed", "snapshots")


class HiveConfig(BaseModel):
    """How a hive runs. Validation is strict, as the server's requests are (a string is not a
    number); :meth:`parse` reads loosely typed options (a grid's, the command line's) and turns
    any problem into one line. A bad field raises pydantic's ``ValidationError``, which the CLI
    and the server report in one line naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    workers: int = Field(2, ge=1, le=MAX_WORKERS, description=f"Number of workers (1-{MAX_WORKERS}).")
    layout: LayoutName = Field("combined", description="combined | interleaved | contiguous | independent")
    max_steps: int = Field(512, ge=1, description="Budget in sequential forward passes (after the prompt).")
    visibility: Visibility = Field(
        "instant", description="instant (the others' tokens of the same pass, as published) | lagged (one pass late)")
    sampling: Sampling = Field("model", description="model (the model's generation config; greedy if none) | greedy")
    temperature: float | None = Field(None, ge=0, allow_inf_nan=False,
                                      description="Sample at this temperature (overrides sampling).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling threshold.")
    seed: int = 0
    check_every: int = Field(
        256, ge=0, validation_alias=AliasChoices("check_every", "check_interval"),  # the API's first name
        description="Fed tokens between redundancy checks (the reference: 256); 0 = off.")
    finisher_tokens: int = Field(16, ge=0, description="Greedy tokens the finisher may write for the answer.")
    snapshots: tuple[int, ...] = Field(
        (), description="Smaller budgets (passes) that also get their answer, from the same run.")
    examples: bool = Field(True, description="Worked examples in the collaboration instruction (as published).")
    suggestions: Suggestions = Field(
        "with-examples", description="with-examples (as published: without the examples the instruction also "
                                     "loses its ways to work together) | always (keep them)")
    step_end: StepEnd = Field(
        "reference-code", description="reference-code (the pinned code's rule) | fenced (also not inside an open "
                                      "```, ~~~ or $$ block: branch inference_lib) | text (a blank line however "
                                      "it is tokenized)")
    guard_headers: bool = Field(
        False, description="Keep workers from writing step headers inside a step (hivethink's addition; the "
                           "reference suppresses only #, BOS, EOS and </think>).")
    think: Think = Field(
        "template", description="template (<think> only where the chat template opens it, as published) | vocab "
                                "(also open it where the vocabulary has <think> and the template did not)")
    extract: Extract = Field(
        "float", description="float (the reference: the rightmost \\boxed{} whose content parses as a number) | "
                             "task (the rightmost \\boxed{}, read by the task's extractor)")

    @model_validator(mode="after")
    def _budgets(self) -> HiveConfig:
        problem = budget_problem(self.snapshots, self.max_steps)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def parse(cls, options: dict[str, Any], where: str = "hive config",
              names: dict[str, str] | None = None) -> HiveConfig:
        """Options as text or numbers (``"0.7"``, ``"256"``) -> a config, or one-line
        :class:`HivethinkError` naming the field as the user wrote it (``names``: field -> e.g.
        the command's ``--flag``)."""
        try:
            return cls.model_validate(options, strict=False)
        except ValidationError as e:
            raise HivethinkError(f"{where}: {validation_message(e, names)}") from None

    @classmethod
    def help(cls, name: str) -> str:
        """The field's description (the CLI's help text)."""
        return cls.model_fields[name].description or ""

    @classmethod
    def default(cls, name: str) -> Any:
        return cls.model_fields[name].default

    def options(self) -> dict[str, Any]:
        """The hive's method, without what a run decides (:data:`RUN_FIELDS`)."""
        return {k: v for k, v in self.model_dump().items() if k not in RUN_FIELDS}

    def generation_config(self, model: LoadedModel) -> Any:
        """The transformers ``GenerationConfig`` the hive samples with: the model's own
        (``sampling: model``; greedy when it has none, as transformers' default), with ``top_p``
        replaced where set; plain greedy; or an explicit temperature (with ``top_p``, no top-k)."""
        from transformers import GenerationConfig

        if self.temperature is not None:
            if self.temperature <= 0:
                return GenerationConfig(do_sample=False)
            return GenerationConfig(do_sample=True, temperature=self.temperature, top_k=0,
                                    top_p=self.top_p if self.top_p is not None else 1.0)
        if self.sampling == "greedy":
            return GenerationConfig(do_sample=False)
        gen = copy.deepcopy(model.generation) if model.generation is not None else GenerationConfig()
        if self.top_p is not None:
            gen.top_p = self.top_p
        return gen


def budget_problem(budgets: Sequence[int], limit: int | None = None) -> str | None:
    """What is wrong with snapshot budgets (None: nothing): positive, strictly increasing, none
    above the run's own budget."""
    b = list(budgets)
    if any(x < 1 for x in b) or b != sorted(set(b)):
        return f"budgets must be positive and strictly increasing, got {b}"
    if limit is not None and b and b[-1] > limit:
        return f"budget {b[-1]} is above the run's budget of {limit} passes"
    return None

