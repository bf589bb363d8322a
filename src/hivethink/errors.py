"""The one exception type that the CLI turns into a one-line message and exit code 2, and the one
formatter of pydantic validation errors into such a line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class HivethinkError(Exception):
    """Bad input or an unusable resource (model file, config, argument). Message is user-facing."""


def validation_message(err: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """The first error of a pydantic validation as ``loc.path: message`` (plus how many more
    there are): one line. ``names``: what the user typed for a top-level field (a command's
    ``--flag``), where that differs from the field's name."""
    errors = err.errors(include_url=False)
    first = errors[0]
    path = [str(p) for p in first["loc"]]
    if path and names and path[0] in names:
        path[0] = names[path[0]]
    loc = ".".join(path)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {msg}{more}" if loc else f"{msg}{more}"
