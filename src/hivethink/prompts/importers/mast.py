"""The MAST judge (Cemri et al.): the ``mast`` book from the MAST team's published judge.

Two origins hold it (protocols.md §0):

- ``mert-cemri/openevolve-mast`` (git): the definitions and examples files as whole files, and
  the judge prompt built by ``openai_evaluator`` in the multi-agent evolution example's
  ``evaluator.py``, run with a stand-in API client that hands back the prompt it is sent;
- the ``agentdash`` package (PyPI, 0.1.0): the prompt built by ``annotator._create_evaluation_prompt``,
  and the definitions and examples the annotator itself loads (``_load_definitions``,
  ``_load_examples``: the files it looks for are not in the package, so it falls back to a short
  built-in list of definitions and no examples; the import records what it does).

The judge prompt's ``{trace}``, ``{definitions}`` and ``{examples}`` become hivethink's
placeholders. The paper-named variant (book ``mast-paper``) is hivethink's own and not imported.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hivethink.prompts.importers.child import BuildError, BuiltText, authors_module, built, hole
from hivethink.prompts.importers.core import Built, Origin, System, WholeFile

TAXONOMY = "openevolve/taxonomy_definitions_examples"
EVALUATOR = "openevolve/examples/multi_agent_evolution_v2/evaluator.py"
ANNOTATOR = "annotator.py"
TRACE = "[step] Alice: the first step of a trace."  # the check's values (any would do)


class EchoClient:
    """An OpenAI client as far as the judge uses one: the reply is the prompt it was sent."""

    def __init__(self) -> None:
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    @staticmethod
    def _create(*, messages: list[dict[str, str]], **_: Any) -> Any:
        if [m["role"] for m in messages] != ["user"]:
            raise BuildError(f"the judge sends {[m['role'] for m in messages]}; hivethink sends one user turn")
        message = SimpleNamespace(content=messages[0]["content"])
        return SimpleNamespace(choices=[SimpleNamespace(message=message)])


def build_openevolve(root: Path) -> dict[str, BuiltText]:
    evaluator = authors_module(root, "mast_evaluator", file=EVALUATOR, stubs=("openai",))
    prompt = evaluator.openai_evaluator
    text = prompt(hole("trace"), definitions=hole("definitions"), examples=hole("examples"), client=EchoClient())
    real = prompt(TRACE, client=EchoClient())  # with the definitions and examples the module read
    values = {"trace": TRACE, "definitions": evaluator.definitions, "examples": evaluator.examples}
    return {"mast/judge": built(text, (real, values))}


def build_agentdash(root: Path) -> dict[str, BuiltText]:
    annotator = authors_module(root.parent, f"{root.name}.annotator", stubs=("openai",)).annotator
    loaded = SimpleNamespace()  # the annotator without its API client
    definitions, examples = annotator._load_definitions(loaded), annotator._load_examples(loaded)
    text = annotator._create_evaluation_prompt(SimpleNamespace(definitions=hole("definitions"),
                                                               examples=hole("examples")), hole("trace"))
    real = annotator._create_evaluation_prompt(SimpleNamespace(definitions=definitions, examples=examples), TRACE)
    values = {"trace": TRACE, "definitions": definitions, "examples": examples}
    return {"mast/judge": built(text, (real, values)), "mast/definitions": built(definitions),
            "mast/examples": built(examples)}


OPENEVOLVE = Origin(
    repository="mert-cemri/openevolve-mast",
    kind="git",
    pinned="d84d53ae0b879b3eb7d1c8d20d4c10d13ea8fee9",
    marks=(f"{TAXONOMY}/definitions.txt", f"{TAXONOMY}/examples.txt", EVALUATOR),
    texts={
        "mast/judge": Built(EVALUATOR, "openai_evaluator (the prompt it sends)"),
        "mast/definitions": WholeFile(f"{TAXONOMY}/definitions.txt"),
        "mast/examples": WholeFile(f"{TAXONOMY}/examples.txt"),
    },
    builder=f"{__name__}:build_openevolve",
)

AGENTDASH = Origin(
    repository="agentdash",
    kind="package",
    pinned="0.1.0",
    marks=(ANNOTATOR, "taxonomy.py"),
    texts={
        "mast/judge": Built(ANNOTATOR, "annotator._create_evaluation_prompt"),
        "mast/definitions": Built(ANNOTATOR, "annotator._load_definitions (as the installed package loads them)"),
        "mast/examples": Built(ANNOTATOR, "annotator._load_examples (as the installed package loads them)"),
    },
    builder=f"{__name__}:build_agentdash",
    package="agentdash",
)

SYSTEM = System(name="mast", books=("mast",), declares="hivethink.metrics.mast", origins=(OPENEVOLVE, AGENTDASH))
