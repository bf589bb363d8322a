"""Every text a model is shown, in one place: one file per template, replaceable from a directory.

A *book* is the set of templates of one protocol or preset (``hogwild``, ``agentsnet``, ...). Its
built-in texts are the files ``hivethink/prompts/<book>/<template>.txt`` shipped with the package;
each template declares the placeholders it may use, written ``{{name}}`` (double braces, so that
LaTeX such as ``\\boxed{}`` and JSON examples need no escaping; ``{{open_braces}}`` and
``{{close_braces}}`` write double braces themselves). One trailing newline of a file is not part of
the text (editors add one); any other whitespace is.

A user replaces a book by pointing ``--prompts DIR`` (or ``prompts:`` in a grid) at a directory
holding ``DIR/<book>/<template>.txt``: a book given there must be complete (every template, no
unknown file, no unknown placeholder), so that the original texts of a paper can be dropped in
and nothing silently mixes with the built-ins. Books absent from ``DIR`` stay built-in. Every
record says which texts made it: :func:`digest` hashes the texts of the books a sample used.

A directory made by ``hivethink prompts import`` (:mod:`hivethink.prompts.importers`) also holds
``SOURCE.json`` (:mod:`hivethink.prompts.source`): the authors' repository and commit behind each
text. Such a directory is checked when used (a text edited since the import is an error), and
:func:`published` tells records which books hold the authors' own words.

Modules declare their books at import time with :func:`book`; rendering checks the values given
against the declaration.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hivethink.errors import HivethinkError
from hivethink.prompts import source

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# placeholders every template may use, for a published text that holds double braces itself
ESCAPES = {"open_braces": "{{", "close_braces": "}}"}
BUILTIN_ROOT = Path(__file__).parent

_lock = threading.Lock()
_books: dict[str, Book] = {}
_override: Path | None = None
_manifest: tuple[source.Manifest, str] | None = None  # the override's SOURCE.json and its digest


def read_text(path: Path) -> str:
    """A template file's text as hivethink uses it (one trailing newline dropped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HivethinkError(f"{path}: cannot read prompt template: {err}") from None
    return text[:-1] if text.endswith("\n") else text


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text)) - set(ESCAPES)


@dataclass(frozen=True)
class Book:
    """The templates of one protocol: name -> the placeholders it may use."""

    name: str
    templates: dict[str, frozenset[str]]

    def _dir(self) -> Path:
        root = _override if _override is not None and (_override / self.name).is_dir() else BUILTIN_ROOT
        return root / self.name

    @property
    def source(self) -> str:
        """Where the texts come from: "builtin" or the override directory."""
        d = self._dir()
        return "builtin" if d.parent == BUILTIN_ROOT else str(d)

    def builtin_text(self, template: str) -> str:
        """The text hivethink ships for a template, whatever directory is in use."""
        if template not in self.templates:
            raise KeyError(f"prompt book {self.name!r} has no template {template!r}")
        return read_text(BUILTIN_ROOT / self.name / f"{template}.txt")

    def text(self, template: str) -> str:
        """The raw text of a template (placeholders unfilled)."""
        if template not in self.templates:
            raise KeyError(f"prompt book {self.name!r} has no template {template!r}")
        return read_text(self._dir() / f"{template}.txt")

    def render(self, template: str, **values: object) -> str:
        """The template with its placeholders filled; a missing or undeclared value is an error."""
        allowed = self.templates.get(template)
        if allowed is None:
            raise KeyError(f"prompt book {self.name!r} has no template {template!r}")
        extra = set(values) - allowed
        if extra:
            raise KeyError(f"template {self.name}/{template} takes no value {sorted(extra)}")
        text = self.text(template)

        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            if key in ESCAPES:
                return ESCAPES[key]
            if key not in values:
                raise KeyError(f"template {self.name}/{template} needs a value for {key!r}")
            return str(values[key])

        return PLACEHOLDER.sub(fill, text)

    def texts(self) -> dict[str, str]:
        return {t: self.text(t) for t in sorted(self.templates)}


def book(name: str, templates: dict[str, Iterable[str]]) -> Book:
    """Declare (or fetch again) the book ``name`` with its templates and their placeholders."""
    spec = {t: frozenset(p) for t, p in templates.items()}
    with _lock:
        known = _books.get(name)
        if known is not None:
            if known.templates != spec:
                raise ValueError(f"prompt book {name!r} declared twice with different templates")
            return known
        b = _books[name] = Book(name, spec)
    return b


def books() -> dict[str, Book]:
    """Every declared book (the modules that declare them must have been imported)."""
    return dict(_books)


def check_book_dir(b: Book, directory: Path) -> None:
    """A user's directory for one book: complete, nothing unknown, only declared placeholders."""
    present = {p.stem for p in directory.glob("*.txt")}
    missing = sorted(set(b.templates) - present)
    if missing:
        raise HivethinkError(f"{directory}: prompt book {b.name!r} is missing template(s) "
                             f"{', '.join(f'{m}.txt' for m in missing)}")
    unknown = sorted(present - set(b.templates))
    if unknown:
        raise HivethinkError(f"{directory}: prompt book {b.name!r} has no template(s) "
                             f"{', '.join(f'{u}.txt' for u in unknown)}")
    for template, allowed in sorted(b.templates.items()):
        path = directory / f"{template}.txt"
        bad = sorted(placeholders(read_text(path)) - allowed)
        if bad:
            raise HivethinkError(f"{path}: unknown placeholder(s) {', '.join('{{' + x + '}}' for x in bad)} "
                                 f"(allowed: {', '.join(sorted(allowed)) or 'none'})")


def check_directory(directory: str | Path) -> Path:
    """Validate a prompts directory against every declared book; -> the resolved path.

    Each sub-directory must be the name of a book and hold that whole book."""
    d = Path(directory).expanduser()
    if not d.is_dir():
        raise HivethinkError(f"{d}: no such prompts directory")
    subdirs = sorted(p for p in d.iterdir() if p.is_dir())
    if not subdirs:
        raise HivethinkError(f"{d}: holds no prompt book (expected sub-directories named "
                             f"{', '.join(sorted(_books)) or 'after the books'})")
    for sub in subdirs:
        b = _books.get(sub.name)
        if b is None:
            raise HivethinkError(f"{sub}: no prompt book is called {sub.name!r} "
                                 f"(books: {', '.join(sorted(_books))})")
        check_book_dir(b, sub)
    found = source.read(d)
    if found is not None:
        source.verify(d, found[0], read_text)
    return d.resolve()


def use_directory(directory: str | Path | None) -> None:
    """Make ``directory`` (validated) replace the built-in books it holds; None: built-ins only."""
    global _override, _manifest
    resolved = None if directory is None else check_directory(directory)
    manifest = None if resolved is None else source.read(resolved)
    with _lock:
        _override, _manifest = resolved, manifest


def active_directory() -> Path | None:
    return _override


def published(names: Iterable[str]) -> dict[str, object] | None:
    """For records: the imports (``SOURCE.json``) behind the named books in use, as
    ``{"manifest": digest, "sources": {book: "repo@commit"}}``; None when all are hivethink's."""
    if _manifest is None:
        return None
    in_use = [n for n in names if n in _books and _books[n].source != "builtin"]
    return source.published(_manifest[0], _manifest[1], in_use)


def digest(names: Iterable[str]) -> str:
    """16 hex digits of SHA-256 over the texts of the named books as they are now."""
    h = hashlib.sha256()
    for name in sorted(set(names)):
        b = _books.get(name)
        if b is None:
            raise KeyError(f"no prompt book {name!r}")
        for template, text in b.texts().items():
            h.update(f"{name}/{template}\0{text}\0".encode())
    return h.hexdigest()[:16]


def export(directory: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Write the books' current texts under ``directory`` (a starting point for a user's set)."""
    root = Path(directory)
    written = []
    for name in sorted(names if names is not None else _books):
        b = _books[name]
        (root / name).mkdir(parents=True, exist_ok=True)
        for template, text in b.texts().items():
            path = root / name / f"{template}.txt"
            path.write_text(text + "\n", encoding="utf-8")
            written.append(path)
    return written
