"""MetaGPT v0.1.0 (FoundationAgents/MetaGPT @ 07b4001): the ``metagpt-0.1.0`` book.

Every text is a constant, read with ``ast``: the role prefix (``roles/role.py``
``PREFIX_TEMPLATE``), each role's goal and constraints (the defaults of its ``__init__``), the
actions' ``str.format`` templates and format examples (``actions/write_prd.py``,
``design_api.py``, ``project_management.py``, ``write_code.py``) and the search block of
``WritePRD.run`` (an f-string over the search result and its summary).

v0.8.1 (the ``metagpt-0.8.1`` book: action nodes, review, summary, tests, debugging) has no
importer yet: it stays hivethink's own.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hivethink.prompts.importers import pyread
from hivethink.prompts.importers.core import Constant, Origin, System

ROLES = {"pm": "product_manager.py:ProductManager", "architect": "architect.py:Architect",
         "pjm": "project_manager.py:ProjectManager", "engineer": "engineer.py:Engineer"}
PRD, DESIGN, TASKS, CODE = (f"metagpt/actions/{f}.py" for f in ("write_prd", "design_api", "project_management",
                                                                  "write_code"))


def _role(key: str, what: str) -> Constant:
    file, cls = ROLES[key].split(":")
    return Constant(f"metagpt/roles/{file}", f"{cls}.__init__.{what}")


V010 = Origin(
    repository="FoundationAgents/MetaGPT",
    kind="git",
    pinned="07b400187c7d8daea367c7f3d915cc477ec2849e",
    marks=("metagpt/roles/role.py", PRD, CODE),
    texts={
        "metagpt-0.1.0/prefix": Constant("metagpt/roles/role.py", "PREFIX_TEMPLATE",
                                         fields={k: k for k in ("profile", "name", "goal", "constraints")}),
        **{f"metagpt-0.1.0/{r}_{what}": _role(r, what) for r in ROLES for what in ("goal", "constraints")},
        "metagpt-0.1.0/prd_search": Constant(PRD, "WritePRD.run.info", holes={"sas.result": "results",
                                                                              "rsp": "summary"}),
        "metagpt-0.1.0/prd": Constant(PRD, "PROMPT_TEMPLATE", fields={k: k for k in (
            "requirements", "search_information", "format_example")}),
        "metagpt-0.1.0/prd_example": Constant(PRD, "FORMAT_EXAMPLE"),
        "metagpt-0.1.0/design": Constant(DESIGN, "PROMPT_TEMPLATE", fields={"context": "context",
                                                                            "format_example": "format_example"}),
        "metagpt-0.1.0/design_example": Constant(DESIGN, "FORMAT_EXAMPLE"),
        "metagpt-0.1.0/tasks": Constant(TASKS, "PROMPT_TEMPLATE", fields={"context": "context",
                                                                          "format_example": "format_example"}),
        "metagpt-0.1.0/tasks_example": Constant(TASKS, "FORMAT_EXAMPLE"),
        "metagpt-0.1.0/code": Constant(CODE, "PROMPT_TEMPLATE", fields={"context": "context", "filename": "filename"}),
    },
)

SYSTEM = System(name="metagpt", books=("metagpt-0.1.0",), declares="hivethink.substrates.metagpt", origins=(V010,))


# -- the fidelity check: hivethink's rendering against the authors' own formatting ---------------

VALUES = {"name": "Alice", "profile": "Product Manager", "goal": "Ship it", "constraints": "Be brief",
          "requirements": "[BOSS: Write a 2048 game]", "search_information": "(no search)",
          "format_example": "## Example", "context": "[Architect: the design]", "filename": "main.py",
          "results": "first hit", "summary": "in short"}  # any values would do


def _fstring(path: Path, scope: str, namespace: dict[str, Any]) -> str:
    """The f-string assigned in ``scope`` (``Class.method.name``) evaluated as Python would,
    with ``namespace`` for its names."""
    *where, name = scope.split(".")
    body: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8")).body
    for part in where:
        body = next(s for s in body if isinstance(s, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and s.name == part).body
    value = next(s.value for s in body if isinstance(s, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == name for t in s.targets))
    text: str = eval(compile(ast.Expression(value), str(path), "eval"), {}, namespace)  # noqa: S307 - a literal f-string of the user's checkout
    return text


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """Each ``metagpt-0.1.0`` template as hivethink renders it (with the prompts directory in
    use) against the authors' text as their code makes it from the same values: the template
    ``str.format``-ed, the f-string evaluated, the default as it stands."""
    from hivethink import prompts

    book = prompts.books()["metagpt-0.1.0"]
    out: list[tuple[str, Any, Any]] = []
    for key, where in V010.texts.items():
        assert isinstance(where, Constant)
        template = key.split("/", 1)[1]
        values = {p: VALUES[p] for p in book.templates[template]}
        if where.holes:
            theirs = _fstring(root / where.file, where.name,
                              {"sas": SimpleNamespace(result=values["results"]), "rsp": values["summary"]})
        else:
            raw = pyread.constant(root / where.file, where.name)
            theirs = raw.format(**values) if where.fields else raw
        out.append((template, book.render(template, **values), theirs))
    return out
