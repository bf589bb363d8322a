"""Read a constant from the authors' Python source without running it (``ast``).

A constant is named by a dotted path: ``NAME`` at module level or ``Class.NAME`` (nested classes
too). Its value may be what authors write for fixed texts: string literals (concatenated,
implicitly or with ``+``), f-strings whose holes name other constants of the same class or
module, ``.strip()``-family calls, and tuples or lists of these. Anything else (a call, an
attribute of an object, a computed value) is not a constant: the text then needs the authors'
builder (:mod:`hivethink.prompts.importers.child`).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from hivethink.errors import HivethinkError

_STRIPS = frozenset({"strip", "lstrip", "rstrip"})


class NotConstant(Exception):
    pass


def _assignments(body: list[ast.stmt]) -> dict[str, ast.expr]:
    """name -> the value of its last top-level assignment in ``body``."""
    out: dict[str, ast.expr] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            out[stmt.target.id] = stmt.value
    return out


def _evaluate(node: ast.expr, scopes: list[dict[str, ast.expr]], depth: int = 0) -> Any:
    if depth > 50:
        raise NotConstant("constants refer to each other in a circle")
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.conversion != -1 or value.format_spec is not None:
                    raise NotConstant("an f-string hole with a conversion or format")
                parts.append(str(_evaluate(value.value, scopes, depth + 1)))
            else:
                parts.append(str(_evaluate(value, scopes, depth + 1)))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, scopes, depth + 1), _evaluate(node.right, scopes, depth + 1)
        if not (isinstance(left, str) and isinstance(right, str)):
            raise NotConstant("a sum that is not of strings")
        return left + right
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _STRIPS
            and not node.keywords and len(node.args) <= 1):
        target = _evaluate(node.func.value, scopes, depth + 1)
        args = [_evaluate(a, scopes, depth + 1) for a in node.args]
        if not isinstance(target, str) or not all(isinstance(a, str) for a in args):
            raise NotConstant("a strip of something that is not a string")
        return getattr(target, node.func.attr)(*args)
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_evaluate(e, scopes, depth + 1) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Name):
        for i, scope in enumerate(scopes):
            if node.id in scope:
                return _evaluate(scope[node.id], scopes[i:], depth + 1)
        raise NotConstant(f"the name {node.id!r} is not a constant of the same class or module")
    raise NotConstant(f"a {type(node).__name__} expression")


def constant(path: Path, dotted: str) -> Any:
    """The value of the constant ``dotted`` in the Python file ``path``; a missing constant or one
    that is not a literal: HivethinkError naming what was expected."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise HivethinkError(f"{path}: cannot read: {err}") from None
    except SyntaxError as err:
        raise HivethinkError(f"{path}: not valid Python (line {err.lineno}): cannot read {dotted}") from None
    *classes, name = dotted.split(".")
    body: list[ast.stmt] = tree.body
    scopes = [_assignments(body)]
    for cls in classes:
        found = next((s for s in body if isinstance(s, ast.ClassDef) and s.name == cls), None)
        if found is None:
            raise HivethinkError(f"{path}: no class {cls} (expected {dotted} there)")
        body = found.body
        scopes.insert(0, _assignments(body))
    value = scopes[0].get(name)
    if value is None:
        raise HivethinkError(f"{path}: no constant {dotted} (the importer expects it there; was it moved "
                             "or renamed?)")
    try:
        return _evaluate(value, scopes)
    except NotConstant as why:
        raise HivethinkError(f"{path}: {dotted} (line {value.lineno}) is not a constant the importer can "
                             f"read: {why}") from None
