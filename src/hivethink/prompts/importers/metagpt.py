"""MetaGPT (FoundationAgents/MetaGPT): the ``metagpt-0.1.0`` and ``metagpt-0.8.1`` books, one per tag.

v0.1.0 (@ 07b4001): every text is a constant, read with ``ast``: the role prefix (``roles/role.py``
``PREFIX_TEMPLATE``), each role's goal and constraints (the defaults of its ``__init__``), the
actions' ``str.format`` templates and format examples (``actions/write_prd.py``,
``design_api.py``, ``project_management.py``, ``write_code.py``) and the search block of
``WritePRD.run`` (an f-string over the search result and its summary).

MetaGPT v0.8.1 (@ c036574): the ``metagpt-0.8.1`` book. The role prefix and constraint
(``roles/role.py``), the roles' goals and constraints (class attributes), the ActionNode template
(``actions/action_node.py`` ``SIMPLE_TEMPLATE``) and the actions' templates (write code, review,
rewrite, summarize, the engineer's is-pass question, write test, run code, debug, the PRD context)
are constants, read with ``ast``. The three documents' node lists, format examples and the
node constraint are built by ``ActionNode.compile`` from the node definitions
(``write_prd_an.py``, ``design_api_an.py``, ``project_management_an.py``): :func:`build_nodes`
runs that code from the checkout in a subprocess, with stand-ins for the LLM, config and logging
modules it imports. The two joiners the authors write inline as f-strings in a loop
(``code_file``: ``WriteCode.get_codes``; ``code_block``: ``SummarizeCode.run``) are not
constants: they stay hivethink's own, with the same characters.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hivethink.prompts.importers import pyread
from hivethink.prompts.importers.core import Built, Constant, Origin, System

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

R081 = {"pm": "product_manager.py:ProductManager", "architect": "architect.py:Architect",
        "pjm": "project_manager.py:ProjectManager", "engineer": "engineer.py:Engineer",
        "qa": "qa_engineer.py:QaEngineer"}
NODE, REVIEW = "metagpt/actions/action_node.py", "metagpt/actions/write_code_review.py"
RUN = "metagpt/actions/run_code.py"
# the document -> (its *_an.py, the node its action fills)
DOCS = {"prd": ("write_prd_an", "WRITE_PRD_NODE"), "design": ("design_api_an", "DESIGN_API_NODE"),
        "tasks": ("project_management_an", "PM_NODE")}


def _same(*names: str) -> dict[str, str]:
    return {n: n for n in names}


def _role081(key: str, what: str) -> Constant:
    file, cls = R081[key].split(":")
    return Constant(f"metagpt/roles/{file}", f"{cls}.{what}")


V081 = Origin(
    repository="FoundationAgents/MetaGPT",
    kind="git",
    pinned="c036574507e7616c02512e7c8ad88dd847783afa",
    marks=("metagpt/roles/role.py", NODE, *(f"metagpt/actions/{f}.py" for f, _ in DOCS.values())),
    builder="hivethink.prompts.importers.metagpt:build_nodes",
    texts={
        "metagpt-0.8.1/prefix": Constant("metagpt/roles/role.py", "PREFIX_TEMPLATE",
                                         fields=_same("profile", "name", "goal")),
        "metagpt-0.8.1/constraint": Constant("metagpt/roles/role.py", "CONSTRAINT_TEMPLATE",
                                             fields=_same("constraints")),
        **{f"metagpt-0.8.1/{r}_{what}": _role081(r, what) for r in R081 for what in ("goal", "constraints")},
        "metagpt-0.8.1/node_prompt": Constant(NODE, "SIMPLE_TEMPLATE",
                                              fields=_same("context", "example", "instruction", "constraint")),
        "metagpt-0.8.1/node_constraint": Built(NODE, "ActionNode.compile (its constraint)"),
        "metagpt-0.8.1/prd_context": Constant(PRD, "CONTEXT_TEMPLATE", fields=_same("project_name", "requirements")),
        **{f"metagpt-0.8.1/{doc}_{part}": Built(f"metagpt/actions/{file}.py",
                                                 f"{node}.compile (its {'instruction' if part == 'nodes' else part})")
           for doc, (file, node) in DOCS.items() for part in ("nodes", "example")},
        "metagpt-0.8.1/code": Constant(CODE, "PROMPT_TEMPLATE", fields=_same(
            "design", "task", "code", "logs", "summary_log", "feedback", "filename")),
        "metagpt-0.8.1/review": Constant(REVIEW, "PROMPT_TEMPLATE", fields=_same("context", "filename", "code")),
        "metagpt-0.8.1/review_instruction": Constant(REVIEW, "EXAMPLE_AND_INSTRUCTION",
                                                     fields=_same("format_example")),
        "metagpt-0.8.1/review_example": Constant(REVIEW, "FORMAT_EXAMPLE", fields=_same("filename")),
        "metagpt-0.8.1/rewrite": Constant(REVIEW, "REWRITE_CODE_TEMPLATE", fields=_same("filename")),
        "metagpt-0.8.1/summarize": Constant("metagpt/actions/summarize_code.py", "PROMPT_TEMPLATE",
                                            fields=_same("system_design", "task", "code_blocks")),
        "metagpt-0.8.1/is_pass": Constant("metagpt/roles/engineer.py", "IS_PASS_PROMPT", fields=_same("context")),
        "metagpt-0.8.1/write_test": Constant("metagpt/actions/write_test.py", "PROMPT_TEMPLATE", fields=_same(
            "code_to_test", "test_file_name", "source_file_path", "workspace")),
        "metagpt-0.8.1/run_code": Constant(RUN, "PROMPT_TEMPLATE", fields=_same("context")),
        "metagpt-0.8.1/run_code_context": Constant(RUN, "TEMPLATE_CONTEXT", fields=_same(
            "code_file_name", "code", "test_file_name", "test_code", "command", "outs", "errs")),
        "metagpt-0.8.1/debug": Constant("metagpt/actions/debug_error.py", "PROMPT_TEMPLATE",
                                        fields=_same("code", "test_code", "logs")),
    },
)

# v0.8.1 first: a v0.8.1 checkout also has every file that marks v0.1.0
SYSTEM = System(name="metagpt", books=("metagpt-0.1.0", "metagpt-0.8.1"), declares="hivethink.substrates.metagpt",
                origins=(V081, V010))


def _node_stand_ins(root: Path) -> None:
    """What ``action_node.py`` and the ``*_an.py`` files import, without MetaGPT's package
    ``__init__`` (which loads its config, LLM providers and tools): the packages point at the
    checkout's directories, the LLM, config, logging and retry modules are stand-ins."""
    from hivethink.prompts.importers.child import stub_modules

    def passthrough(*_: Any, **__: Any) -> Any:
        return lambda f: f

    packages = {name: {"__path__": [str(root.joinpath(*name.split(".")))]}
                for name in ("metagpt", "metagpt.actions", "metagpt.utils")}
    given: dict[str, dict[str, Any]] = {
        **packages,
        "metagpt.actions.action_outcls_registry": {"register_action_outcls": lambda f: f},
        "metagpt.utils.common": {"general_after_log": lambda *_: None},
        "tenacity": {"retry": passthrough, "stop_after_attempt": lambda *_: None,
                     "wait_random_exponential": lambda **_: None},
    }
    stub_modules(("metagpt.const", "metagpt.llm", "metagpt.logs", "metagpt.config2",
                  "metagpt.provider.postprocess.llm_output_postprocess", "metagpt.utils.human_interaction"), **given)


def build_nodes(root: Path) -> dict[str, Any]:
    """(In the child.) The three documents' node lists and format examples, and the constraint,
    as ``ActionNode.compile`` puts them into its template (called as ``ActionNode.fill`` calls it:
    JSON schema, mode ``auto``), each read by compiling with a template of that one field; the
    check compiles the whole prompt with the authors' template."""
    import importlib

    from hivethink.prompts.importers.child import built

    _node_stand_ins(root)
    out: dict[str, Any] = {}
    for doc, (file, name) in DOCS.items():
        node = getattr(importlib.import_module(f"metagpt.actions.{file}"), name)

        def part(field: str, _node: Any = node) -> str:
            text: str = _node.compile(context="", schema="json", mode="auto", template="{" + field + "}")
            return text

        out[f"metagpt-0.8.1/{doc}_nodes"] = built(part("instruction"))
        out[f"metagpt-0.8.1/{doc}_example"] = built(part("example"))
        if doc == "prd":
            out["metagpt-0.8.1/node_constraint"] = built(part("constraint"))
    return out


def compile_documents(root: Path) -> dict[str, str]:
    """(In the child, for the fidelity check.) Each document's whole prompt as ``ActionNode.fill``
    compiles it, with the authors' own template, for the context :data:`VALUES` gives."""
    import importlib

    _node_stand_ins(root)
    return {doc: getattr(importlib.import_module(f"metagpt.actions.{file}"), name).compile(
        context=VALUES["context"], schema="json", mode="auto") for doc, (file, name) in DOCS.items()}


# -- the fidelity check: hivethink's rendering against the authors' own formatting ---------------

VALUES = {"name": "Alice", "profile": "Product Manager", "goal": "Ship it", "constraints": "Be brief",
          "requirements": "[BOSS: Write a 2048 game]", "search_information": "(no search)",
          "format_example": "## Example", "context": "[Architect: the design]", "filename": "main.py",
          "results": "first hit", "summary": "in short", "project_name": "game_2048", "design": "the design",
          "task": "the tasks", "code": "print(1)", "logs": "Traceback ...", "summary_log": "todo: none",
          "feedback": "it crashed", "system_design": "classDiagram", "code_blocks": "```python\nx = 1\n```",
          "code_to_test": "def f(): ...", "test_file_name": "test_main.py", "source_file_path": "/data/main.py",
          "workspace": "/data", "code_file_name": "main.py", "test_code": "assert f()", "command": "python main.py",
          "outs": "ok", "errs": "", "example": "[CONTENT]{}[/CONTENT]", "instruction": "- A: str  # a",
          "constraint": "Language: any"}  # any values would do


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


def _inline_fstring(path: Path, start: str, namespace: dict[str, Any]) -> str:
    """The f-string in ``path`` whose first literal part begins with ``start`` (a joiner the
    authors write inline, in a loop; where they write it more than once, every copy must give the
    same text), evaluated with ``namespace`` for its names."""
    found = {eval(compile(ast.Expression(n), str(path), "eval"), {}, namespace)  # noqa: S307 - a literal f-string of the user's checkout
             for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(n, ast.JoinedStr) and n.values and isinstance(n.values[0], ast.Constant)
             and str(n.values[0].value).startswith(start)}
    if len(found) != 1:
        raise ValueError(f"{path}: f-strings beginning with {start!r} give {len(found)} texts, expected one")
    text: str = found.pop()
    return text


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """Each template as hivethink renders it (with the prompts directory in use) against the
    authors' text as their code makes it from the same values: the template ``str.format``-ed,
    the f-string evaluated, the default as it stands; v0.8.1 (a checkout with
    ``action_node.py``): also each document's whole prompt as ``ActionNode.compile`` builds it
    (in a subprocess) against hivethink's ``node_prompt`` filled with the imported pieces, and
    the two inline joiners that stay hivethink's own against the authors' f-strings."""
    if (root / NODE).is_file():
        return _fidelity_081(root)
    return _fidelity(root, V010, "metagpt-0.1.0")


def _fidelity_081(root: Path) -> list[tuple[str, Any, Any]]:
    from hivethink import prompts
    from hivethink.prompts.importers.core import run_child

    out = _fidelity(root, V081, "metagpt-0.8.1")
    book = prompts.books()["metagpt-0.8.1"]
    compiled = run_child("hivethink.prompts.importers.metagpt:compile_documents", root)
    for doc in DOCS:
        ours = book.render("node_prompt", context=VALUES["context"], example=book.render(f"{doc}_example"),
                           instruction=book.render(f"{doc}_nodes"), constraint=book.render("node_constraint"))
        out.append((f"the {doc} document's whole prompt (ActionNode.compile)", ours, compiled[doc]))
    code, name = SimpleNamespace(content=VALUES["code"]), VALUES["filename"]
    out.append(("code_file (hivethink's own)", book.render("code_file", filename=name, code=VALUES["code"]),
                _inline_fstring(root / CODE, "----- ", {"filename": name, "doc": code})))
    out.append(("code_block (hivethink's own)", book.render("code_block", code=VALUES["code"]),
                _inline_fstring(root / "metagpt/actions/summarize_code.py", "```python", {"code_doc": code})))
    return out


def _fidelity(root: Path, origin: Origin, name: str) -> list[tuple[str, Any, Any]]:
    from hivethink import prompts

    book = prompts.books()[name]
    out: list[tuple[str, Any, Any]] = []
    for key, where in origin.texts.items():
        if not isinstance(where, Constant):
            continue  # built: checked whole, above
        template = key.split("/", 1)[1]
        values = {p: VALUES[p] for p in book.templates[template]}
        if where.holes:
            theirs = _fstring(root / where.file, where.name,
                              {"sas": SimpleNamespace(result=values["results"]), "rsp": values["summary"]})
        else:
            raw = pyread.constant(root / where.file, where.name)
            theirs = raw.format(**values, **({"format_example": ""} if template == "summarize" else {})) \
                if where.fields else raw
        out.append((template, book.render(template, **values), theirs))
    return out
