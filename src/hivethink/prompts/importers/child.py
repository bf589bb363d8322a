"""The authors' own builders, run in a subprocess from the user's checkout.

Where authors build a text in code (f-strings, template functions), the importer runs that code
as it is, in a fresh interpreter (:data:`COMMAND` with the builder, the root and an output
file), so that nothing of it enters the importing process. An adapter's builder
(``module:function``) is called with the source's root and returns, per text, the text built
with *holes* in place of hivethink's placeholders, and the same text built with real values (the
check: hivethink's rendering of the template must give exactly the authors' text).

Holes are private-use characters around a placeholder's name (:func:`hole`); the authors' code
carries them like any string (a worker's name, a header, a chat turn), so a placeholder lands
wherever the authors' code puts that value. Heavy objects the builders expect (tokenizers, API
clients, unused imports such as ``transformers``) get light stand-ins here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

OPEN, CLOSE = "\ue000", "\ue001"
COMMAND = "import sys; from hivethink.prompts.importers.child import main; sys.exit(main(sys.argv[1:]))"


def hole(name: str) -> str:
    """The stand-in value that becomes ``{{name}}`` in the imported template."""
    return f"{OPEN}{name}{CLOSE}"


class Check(TypedDict):
    real: str  # the authors' text built with real values
    values: dict[str, str]  # those values, by placeholder


class BuiltText(TypedDict):
    text: str  # built with holes
    checks: list[Check]


def built(text: str, *checks: tuple[str, dict[str, Any]]) -> BuiltText:
    return {"text": text, "checks": [{"real": r, "values": {k: str(v) for k, v in vs.items()}} for r, vs in checks]}


class BuildError(Exception):
    """The authors' code did not give what the adapter expects (reported in one line)."""


def stub_modules(names: Sequence[str], **attrs: dict[str, Any]) -> None:
    """Stand-ins for modules the authors' file imports but the builder does not need (any
    attribute is a dummy class, so annotations such as ``transformers.PreTrainedTokenizer``
    evaluate); ``attrs`` gives some of them real attributes (module name -> {name: value})."""
    for name in dict.fromkeys([*names, *attrs]):
        module = types.ModuleType(name)

        def dummy(attr: str, _module: str = name) -> type:
            if attr.startswith("__"):  # import machinery probes (__path__, __file__, ...)
                raise AttributeError(attr)
            return type(attr, (), {"__module__": _module})

        setattr(module, "__getattr__", dummy)  # noqa: B010 - a module-level __getattr__ (PEP 562)
        for key, value in attrs.get(name, {}).items():
            setattr(module, key, value)
        sys.modules[name] = module


def split_variants(a: str, b: str) -> tuple[str, str, str, str]:
    """Two texts the authors' code built alike except in one place: (the common start, ``a``'s
    part, ``b``'s part, the common end)."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    return a[:start], a[start:len(a) - end], b[start:len(b) - end], a[len(a) - end:]


def number_hole(texts: dict[int, str], name: str) -> str:
    """The text built with two numbers (``{n: text}``), with ``name``'s hole where they differ,
    which must be only where one says one number and the other the other."""
    (m, x), (n, y) = sorted(texts.items())
    out, i, j = [], 0, 0
    while i < len(x) or j < len(y):
        if x.startswith(str(m), i) and y.startswith(str(n), j) and (x[i:i + len(str(m))] != y[j:j + len(str(n))]):
            out.append(hole(name))
            i, j = i + len(str(m)), j + len(str(n))
        elif i < len(x) and j < len(y) and x[i] == y[j]:
            out.append(x[i])
            i, j = i + 1, j + 1
        else:
            raise BuildError(f"the texts built with {m} and {n} differ where hivethink's {{{{{name}}}}} is not "
                             f"({x[i:i + 20]!r} against {y[j:j + 20]!r})")
    return "".join(out)


def repeat_unit(one: str, two: str, marker: str) -> tuple[str, str, str]:
    """Two texts the authors' code built with one and with two copies of a part (``marker`` is in
    it): (the text before it, the part, the text after it)."""
    size = len(two) - len(one)
    for start in range(len(one) - size + 1):
        unit = one[start:start + size]
        if size > 0 and marker in unit and two == one[:start + size] + one[start:]:
            return one[:start], unit, one[start + size:]
    raise BuildError(f"the texts built with one and two parts do not repeat a part holding {marker!r}")


def line_with(text: str, marker: str) -> tuple[str, str, str]:
    """``text`` cut around the whole line holding ``marker``: (before it, the line, after it)."""
    at = text.find(marker)
    if at < 0:
        raise BuildError(f"the built text has no {marker!r} where hivethink expects it")
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    return text[:start], text[start:end], text[end:]


def authors_module(root: Path, name: str, *, file: str | None = None, stubs: Sequence[str] = ()) -> types.ModuleType:
    """Import the authors' module ``name`` from ``root`` (``file``: its path under ``root`` when it
    is not on the import path), after installing ``stubs``."""
    stub_modules(stubs)
    sys.path.insert(0, str(root))
    if file is None:
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, root / file)
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot load {root / file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ChatTokenizerStandIn:
    """A tokenizer as far as prompt builders use one: ``apply_chat_template`` marks the one user
    turn with ``before``/``after`` (holes, or known strings for the check), ``vocab`` and
    ``encode`` know the few strings given to them (as one token each)."""

    bos_token = "<s>"
    eos_token = "</s>"

    def __init__(self, before: str, after: str, tokens: Sequence[str] = ()):
        self.before, self.after = before, after
        self.vocab = {t: i for i, t in enumerate(dict.fromkeys([self.bos_token, self.eos_token, *tokens]))}

    def apply_chat_template(self, conversation: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = False, **_: Any) -> str:
        roles = [m.get("role") for m in conversation]
        if tokenize or not add_generation_prompt or roles != ["user"]:
            raise BuildError(f"the authors' code asks the chat template for {roles} (tokenize={tokenize}, "
                             f"add_generation_prompt={add_generation_prompt}); hivethink wraps one user turn "
                             "with the generation prompt")
        return self.before + conversation[0]["content"] + self.after

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if text not in self.vocab:
            raise BuildError(f"the stand-in tokenizer was asked to encode {text!r}")
        return [self.vocab[text]]


def main(argv: Sequence[str]) -> int:
    """``ref root out [input]``: call ``ref`` (``module:function``) with the root (and the JSON
    of ``input``, for a replay) and write its JSON result to ``out``."""
    ref, root, out, *given = argv
    module_name, _, function = ref.partition(":")
    builder: Callable[..., Any] = getattr(importlib.import_module(module_name), function)
    args = [json.loads(Path(given[0]).read_text(encoding="utf-8"))] if given else []
    try:
        result = builder(Path(root), *args)
    except BuildError as err:
        print(f"{err}", file=sys.stderr)
        return 3
    except Exception as err:  # noqa: BLE001 - the authors' code failed: say how, in one line
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f" ({Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})" if tb is not None else ""
        print(f"{type(err).__name__}: {err}{where}", file=sys.stderr)
        return 3
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0
