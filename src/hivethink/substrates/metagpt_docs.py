"""MetaGPT's documents: their typed sections and the published parsers, rule for rule.

v0.1.0 (``metagpt/utils/common.py``, ``OutputParser.parse_data_with_mapping`` and
``CodeParser``; ``actions/action.py::_aask_v1``): the reply is split at every ``##``; each
non-blank piece's first line is its title (one trailing ``:`` dropped) and the rest its content
(a piece without a newline, or with an empty title, fails the parse); a content's first fenced
code block replaces it where there is one; a list-typed section is then read as a Python list
literal (``[...]``, anything before a ``=`` ignored) where it holds one, else as its lines.
Every section of the schema must be present (others are ignored) and have its type (checked by
pydantic here, pydantic 1 there: numbers were turned into text there, they fail here).

v0.8.1 (``actions/action_node.py``, ``utils/repair_llm_raw_output.py``; the default
``repair_llm_output: false``): the text between the first ``[CONTENT]`` and the last
``[/CONTENT]`` is read as JSON (control characters allowed); every node must be present and
have its type (pydantic 2, as there). MetaGPT's own decoder also accepts single-quoted
strings; :func:`json.loads` here does not.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError, create_model

TYPES: dict[str, Any] = {
    "str": str,
    "list[str]": list[str],
    "list[tuple[str, str]]": list[tuple[str, str]],
    "list[list[str]]": list[list[str]],
}
LIST_TYPES = ("list[str]", "list[tuple[str, str]]")  # v0.1.0 reads these as list literals


class ParseError(ValueError):
    """A reply that does not hold the document (the message says why)."""


@dataclass(frozen=True)
class Schema:
    """A document type: its name and its sections (key, type name) in order."""

    name: str
    sections: tuple[tuple[str, str], ...]

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.sections]

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` checked against the sections' types; missing ones fail, extra ones are
        dropped (as both versions ignore them)."""
        missing = [k for k in self.keys if k not in data]
        if missing:
            raise ParseError(f"missing section(s): {', '.join(missing)}")
        fields: dict[str, Any] = {f"f{i}": (TYPES[t], ...) for i, (_, t) in enumerate(self.sections)}
        model = create_model(f"{self.name}_doc", **fields)
        try:
            checked = model(**{f"f{i}": data[k] for i, k in enumerate(self.keys)})
        except ValidationError as err:
            first = err.errors()[0]
            where = self.keys[int(str(first["loc"][0])[1:])]
            raise ParseError(f"section {where!r}: {first['msg']}") from None
        return {k: getattr(checked, f"f{i}") for i, k in enumerate(self.keys)}


# v0.1.0 documents (OUTPUT_MAPPING of write_prd.py, design_api.py, project_management.py)
PRD_010 = Schema("prd", (
    ("Original Requirements", "str"), ("Product Goals", "list[str]"), ("User Stories", "list[str]"),
    ("Competitive Analysis", "list[str]"), ("Competitive Quadrant Chart", "str"),
    ("Requirement Analysis", "str"), ("Requirement Pool", "list[tuple[str, str]]"),
    ("Anything UNCLEAR", "str"),
))  # fmt: skip
DESIGN_010 = Schema("system_design", (
    ("Implementation approach", "str"), ("Python package name", "str"), ("File list", "list[str]"),
    ("Data structures and interface definitions", "str"), ("Program call flow", "str"),
    ("Anything UNCLEAR", "str"),
))  # fmt: skip
TASKS_010 = Schema("task", (
    ("Required Python third-party packages", "str"),
    ("Required Other language third-party packages", "str"), ("Full API spec", "str"),
    ("Logic Analysis", "list[tuple[str, str]]"), ("Task list", "list[str]"),
    ("Shared Knowledge", "str"), ("Anything UNCLEAR", "str"),
))  # fmt: skip

# v0.8.1 documents (the NODES of write_prd_an.py, design_api_an.py, project_management_an.py)
PRD_081 = Schema("WritePRD", (
    ("Language", "str"), ("Programming Language", "str"), ("Original Requirements", "str"),
    ("Project Name", "str"), ("Product Goals", "list[str]"), ("User Stories", "list[str]"),
    ("Competitive Analysis", "list[str]"), ("Competitive Quadrant Chart", "str"),
    ("Requirement Analysis", "str"), ("Requirement Pool", "list[list[str]]"),
    ("UI Design draft", "str"), ("Anything UNCLEAR", "str"),
))  # fmt: skip
DESIGN_081 = Schema("DesignAPI", (
    ("Implementation approach", "str"), ("File list", "list[str]"),
    ("Data structures and interfaces", "str"), ("Program call flow", "str"), ("Anything UNCLEAR", "str"),
))  # fmt: skip
TASKS_081 = Schema("PM_NODE", (
    ("Required Python packages", "list[str]"), ("Required Other language third-party packages", "list[str]"),
    ("Logic Analysis", "list[list[str]]"), ("Task list", "list[str]"), ("Full API spec", "str"),
    ("Shared Knowledge", "str"), ("Anything UNCLEAR", "str"),
))  # fmt: skip

# hivethink's math adaptation (not published): read like v0.1.0 documents
ANALYSIS = Schema("analysis", (("Restated Problem", "str"), ("Given Quantities", "list[str]"), ("Goal", "str")))
PLAN = Schema("plan", (("Steps", "list[str]"),))
SOLUTION = Schema("solution", (("Working", "str"), ("Computation", "str"), ("Final Answer", "str")))


# -- v0.1.0 ---------------------------------------------------------------------------------
_CODE = re.compile(r"```.*?\s+(.*?)```", re.DOTALL)  # CodeParser.parse_code with lang=""
_LIST = re.compile(r"\s*(.*=.*)?(\[.*\])", re.DOTALL)


def first_code_block(text: str) -> str:
    """The first fenced block's content (the published pattern: the fence, its info string up
    to the first whitespace, then everything up to the next fence); ParseError without one."""
    found = _CODE.search(text)
    if found is None:
        raise ParseError("no code block")
    return found.group(1)


def _list_literal(text: str) -> Any:
    """``OutputParser.parse_file_list``: the ``[...]`` span as a Python literal, else the lines."""
    found = _LIST.search(text)
    if found is None:
        return text.split("\n")
    return ast.literal_eval(found.group(2))


def split_sections(text: str, *, strip_colon: bool = True) -> dict[str, str]:
    """``parse_blocks``: title -> content of every ``##``-separated piece (ParseError where a
    piece has no newline or, with ``strip_colon``, an empty title)."""
    out: dict[str, str] = {}
    for piece in text.split("##"):
        if piece.strip() == "":
            continue
        if "\n" not in piece:
            raise ParseError(f"section {piece.strip()[:40]!r} has no content line")
        title, content = piece.split("\n", 1)
        if strip_colon:
            if not title:
                raise ParseError("a '##' with no title")
            if title[-1] == ":":
                title = title[:-1]
        out[title.strip()] = content.strip()
    return out


def parse_sections(text: str, schema: Schema) -> dict[str, Any]:
    """A v0.1.0 document: the typed sections of ``schema`` read from ``text``."""
    types = dict(schema.sections)
    parsed: dict[str, Any] = {}
    for title, content in split_sections(text).items():
        value: Any = content
        with contextlib.suppress(ParseError):
            value = first_code_block(value)
        if types.get(title) in LIST_TYPES:
            with contextlib.suppress(ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                value = _list_literal(value)
        parsed[title] = value
    return schema.validate(parsed)


def section_code_list(text: str, title: str) -> list[Any]:
    """``CodeParser.parse_file_list(block=title)``: the first section whose title contains
    ``title`` must hold a fenced block with a ``[...]`` list literal (the v0.1.0 engineer reads
    its task list so, more strictly than the project manager's own parse)."""
    blocks = split_sections(text, strip_colon=False)
    content = next((v for k, v in blocks.items() if title in k), "")
    found = _LIST.search(first_code_block(content))
    if found is None:
        raise ParseError(f"section {title!r} holds no list")
    try:
        value = ast.literal_eval(found.group(2))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise ParseError(f"section {title!r}: not a Python list ({type(err).__name__})") from None
    if not isinstance(value, list):
        raise ParseError(f"section {title!r}: not a list")
    return value


def section_code_str(text: str, title: str) -> str:
    """``CodeParser.parse_str(block=title)``: the first fenced block of the section, after its
    last ``=``, stripped of quotes (ParseError without a block)."""
    blocks = split_sections(text, strip_colon=False)
    content = next((v for k, v in blocks.items() if title in k), "")
    return first_code_block(content).split("=")[-1].strip().strip("'").strip('"')


# -- v0.8.1 ---------------------------------------------------------------------------------
_TAGGED = re.compile(r"\[CONTENT\]([\s\S]*)\[/CONTENT\]")
RIGHT_TAG = "[/CONTENT]"


def _extract(text: str) -> str:
    for match in _TAGGED.findall(text):
        if match:
            return match.strip()
    return text.strip()


def tagged_content(text: str) -> str:
    """``extract_content_from_output``: the text between ``[CONTENT]`` and the last
    ``[/CONTENT]``, with its fallbacks for a missing closing tag or a doubled opening one."""
    content = _extract(text)
    if not content.startswith("{"):
        return _extract(content + "\n" + RIGHT_TAG if RIGHT_TAG not in content else text)
    if RIGHT_TAG in content:
        content = content[: content.find(RIGHT_TAG)].strip()
    return content


def parse_tagged_json(text: str, schema: Schema) -> dict[str, Any]:
    """A v0.8.1 document: the JSON object between the content tags, checked against ``schema``."""
    content = tagged_content(text)
    try:
        data = json.loads(content, strict=False)
    except (ValueError, RecursionError) as err:
        raise ParseError(f"not JSON between the content tags ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise ParseError(f"the content is JSON {type(data).__name__}, not an object")
    return schema.validate(data)


def recipient(summary: str) -> str:
    """``parse_recipient``: the word after ``## Send To:`` (else after ``Send To:``), or ""."""
    for pattern in (r"## Send To:\s*([A-Za-z]+)\s*?", r"Send To:\s*([A-Za-z]+)\s*?"):
        found = re.search(pattern, summary)
        if found:
            return found.group(1)
    return ""


def section(text: str, title: str) -> str:
    """``CodeParser.parse_block``: the content of the first section whose title contains
    ``title`` ("" when there is none; ParseError when the text cannot be split)."""
    blocks = split_sections(text, strip_colon=False)
    return next((v for k, v in blocks.items() if title in k), "")


UNITTEST_OK = re.compile(r"Ran (\d+) tests in ([\d.]+)s\n\nOK")
