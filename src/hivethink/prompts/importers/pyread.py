"""Read a constant from the authors' Python source without running it (``ast``).

A constant is named by a dotted path through classes and functions: ``NAME`` at module level,
``Class.NAME`` (nested classes too), ``Class.method.NAME`` (an assignment at the top of the
method's body, or the default of its parameter ``NAME``). Where the value is a call, a further
segment names one of its keyword arguments (``Class.__init__.message.content``: the
``content=`` of the call assigned to ``message``). Its value may be what authors write for
fixed texts: string literals (concatenated, implicitly or with ``+``), f-strings whose holes
name other constants of the same scopes, ``.strip()``-family
calls, calls of a declared wrapper with one literal (``TextPrompt("...")``, a ``str``
subclass), and tuples or lists of these. An f-string hole whose expression the adapter maps to
a placeholder (``holes``: source text -> name) becomes that placeholder's hole
(:func:`hivethink.prompts.importers.child.hole`). Anything else (a call, an attribute of an
object, a computed value) is not a constant: the text then needs the authors' builder
(:mod:`hivethink.prompts.importers.child`).

:func:`format_literal` finds the literal a ``str.format`` call formats, where the authors write
the template inline (``"Q: {}".format(question)``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivethink.errors import HivethinkError
from hivethink.prompts.importers.child import hole

_STRIPS = frozenset({"strip", "lstrip", "rstrip"})
_Scope = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


class NotConstant(Exception):
    pass


@dataclass(frozen=True)
class _How:
    holes: Mapping[str, str] = field(default_factory=dict)  # f-string hole source -> placeholder
    wrappers: frozenset[str] = frozenset()  # calls that wrap one literal (str subclasses)


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


def _defaults(args: ast.arguments) -> dict[str, ast.expr]:
    """parameter -> its default value."""
    positional = [*args.posonlyargs, *args.args]
    out = {a.arg: d for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True)}
    out |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None}
    return out


def _evaluate(node: ast.expr, scopes: list[dict[str, ast.expr]], how: _How, depth: int = 0) -> Any:
    if depth > 50:
        raise NotConstant("constants refer to each other in a circle")
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                source = ast.unparse(value.value)
                if source in how.holes:
                    parts.append(hole(how.holes[source]))
                    continue
                if value.conversion != -1 or value.format_spec is not None:
                    raise NotConstant("an f-string hole with a conversion or format")
                parts.append(str(_evaluate(value.value, scopes, how, depth + 1)))
            else:
                parts.append(str(_evaluate(value, scopes, how, depth + 1)))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, scopes, how, depth + 1), _evaluate(node.right, scopes, how, depth + 1)
        if not (isinstance(left, str) and isinstance(right, str)):
            raise NotConstant("a sum that is not of strings")
        return left + right
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _STRIPS
            and not node.keywords and len(node.args) <= 1):
        target = _evaluate(node.func.value, scopes, how, depth + 1)
        args = [_evaluate(a, scopes, how, depth + 1) for a in node.args]
        if not isinstance(target, str) or not all(isinstance(a, str) for a in args):
            raise NotConstant("a strip of something that is not a string")
        return getattr(target, node.func.attr)(*args)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in how.wrappers
            and len(node.args) == 1 and not node.keywords):
        return _evaluate(node.args[0], scopes, how, depth + 1)
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_evaluate(e, scopes, how, depth + 1) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Name):
        for i, scope in enumerate(scopes):
            if node.id in scope:
                return _evaluate(scope[node.id], scopes[i:], how, depth + 1)
        raise NotConstant(f"the name {node.id!r} is not a constant of the same scope")
    raise NotConstant(f"a {type(node).__name__} expression")


def _parse(path: Path, what: str) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise HivethinkError(f"{path}: no such file (the importer expects {what} there; was it moved?)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise HivethinkError(f"{path}: cannot read: {err}") from None
    except SyntaxError as err:
        raise HivethinkError(f"{path}: not valid Python (line {err.lineno}): cannot read {what}") from None


def constant(path: Path, dotted: str, *, holes: Mapping[str, str] | None = None,
             wrappers: tuple[str, ...] = ()) -> Any:
    """The value of the constant ``dotted`` in the Python file ``path``; a missing constant or one
    that is not a literal: HivethinkError naming what was expected."""
    tree = _parse(path, dotted)
    how = _How(dict(holes or {}), frozenset(wrappers))
    segments = dotted.split(".")
    scope: _Scope = tree
    scopes = [_assignments(tree.body)]
    i = 0
    while i < len(segments) - 1:  # walk down classes and functions while the names are those
        found = next((s for s in scope.body if isinstance(s, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and s.name == segments[i]), None)
        if found is None:
            break
        scope = found
        scopes.insert(0, _assignments(found.body))
        i += 1
    name, keywords = segments[i], segments[i + 1:]
    value = scopes[0].get(name)
    if value is None and isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        value = _defaults(scope.args).get(name)  # a parameter's default (``Role.__init__.goal``)
    if value is None:
        if keywords:
            raise HivethinkError(f"{path}: no class, function or assignment {'.'.join(segments[:i + 1])} "
                                 f"(expected {dotted} there; was it moved or renamed?)")
        raise HivethinkError(f"{path}: no constant {dotted} (the importer expects it there; was it moved "
                             "or renamed?)")
    for keyword in keywords:  # the keyword arguments of the calls assigned
        arg = None
        if isinstance(value, ast.Call):
            arg = next((k.value for k in value.keywords if k.arg == keyword), None)
        if arg is None:
            raise HivethinkError(f"{path}: {dotted} (line {value.lineno}): no keyword argument {keyword}= where "
                                 "the importer expects it")
        value = arg
    try:
        return _evaluate(value, scopes, how)
    except NotConstant as why:
        raise HivethinkError(f"{path}: {dotted} (line {value.lineno}) is not a constant the importer can "
                             f"read: {why}") from None


def _scope_body(tree: ast.Module, scope: str) -> list[ast.stmt] | None:
    """The statements of ``scope``: ``__main__`` (the ``if __name__ == "__main__":`` block), or a
    dotted path of classes and functions."""
    if scope == "__main__":
        for stmt in tree.body:
            if isinstance(stmt, ast.If) and ast.unparse(stmt.test).replace("'", '"') == '__name__ == "__main__"':
                return stmt.body
        return None
    body: list[ast.stmt] = tree.body
    for name in scope.split("."):
        found = next((s for s in body if isinstance(s, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and s.name == name), None)
        if found is None:
            return None
        body = found.body
    return body


def format_literal(path: Path, scope: str, args: tuple[str, ...], occurrence: int | None = None) -> str:
    """The string literal formatted by the one ``<literal>.format(<args>)`` call in ``scope`` whose
    arguments read ``args`` (their source text): the template the authors wrote inline
    (``occurrence``: the n-th such call in source order, where there are several)."""
    what = f"a str.format template called with ({', '.join(args)}) in {scope}"
    tree = _parse(path, what)
    body = _scope_body(tree, scope)
    if body is None:
        raise HivethinkError(f"{path}: no {scope} (the importer expects {what} there)")
    calls = sorted(
        (node for stmt in body for node in ast.walk(stmt)
         if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
         and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
         and not node.keywords and tuple(ast.unparse(a) for a in node.args) == args),
        key=lambda node: (node.lineno, node.col_offset),  # source order (ast.walk goes breadth first)
    )
    found = [call.func.value.value for call in calls]  # type: ignore[attr-defined]
    if occurrence is not None:
        if len(found) < occurrence:
            raise HivethinkError(f"{path}: {len(found)} {what}, the importer expects at least {occurrence} "
                                 "(was it moved or changed?)")
        return found[occurrence - 1]
    if len(found) != 1:
        raise HivethinkError(f"{path}: {'no' if not found else 'more than one'} {what} (was it moved or changed?)")
    return found[0]
