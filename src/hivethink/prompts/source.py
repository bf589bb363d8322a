"""``SOURCE.json``: where the texts of an imported prompts directory come from.

``hivethink prompts import`` (:mod:`hivethink.prompts.importers`) writes, next to the books it
imported, one manifest that names for every template its origin (``published``: read from the
authors' files; ``builtin``: the authors publish no such text, so hivethink's own fills the slot),
the authors' file and the constant, key or function that holds it, and the SHA-256 of the
template as written. Several imports (one per system) may share a directory.

A directory with a manifest is checked when it is used: every text the manifest lists must still
be the one imported (an edited file is no longer the authors' text, and records would say it
is). Records name the imports behind the books a sample used (:func:`published`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from hivethink.errors import HivethinkError

MANIFEST = "SOURCE.json"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextSource(_Strict):
    """One template of an imported book."""

    origin: Literal["published", "builtin"]
    sha256: str  # of the template as hivethink reads it
    file: str | None = None  # the authors' file, relative to the source
    object: str | None = None  # the constant, key or function that holds the text
    how: Literal["constant", "json", "file", "builder"] | None = None
    authors_sha256: str | None = None  # the authors' text itself (placeholders filled, for builders)


class Import(_Strict):
    """One run of ``hivethink prompts import``."""

    system: str
    repository: str  # owner/name, or the package's name for an installed package
    kind: Literal["git", "package"]
    source: str  # where the files were read: the checkout, or the package's directory
    commit: str | None = None  # git: HEAD of the checkout
    version: str | None = None  # package: its version
    pinned: str  # the commit or version hivethink's preset is pinned to
    at_pin: bool
    modified: list[str] = []  # git: files the texts come from that differ from the commit
    hivethink: str
    imported_at: str
    texts: dict[str, TextSource]  # "book/template" -> its source
    checks: dict[str, str] = {}  # rules read from the same files, found equal to hivethink's

    @property
    def books(self) -> set[str]:
        return {key.split("/", 1)[0] for key in self.texts}

    @property
    def label(self) -> str:
        """``repo@commit`` (12 digits) or ``package==version``."""
        if self.kind == "git":
            return f"{self.repository}@{(self.commit or 'unknown')[:12]}"
        return f"{self.repository}=={self.version}"


class Manifest(_Strict):
    format: Literal[1] = 1
    imports: list[Import]


def read(directory: Path) -> tuple[Manifest, str] | None:
    """The directory's manifest and its digest (16 hex digits of its bytes), or None."""
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
        manifest = Manifest.model_validate_json(raw)
    except OSError as err:
        raise HivethinkError(f"{path}: cannot read: {err.strerror or err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HivethinkError(f"{path}: not a prompts manifest ({where}: {first['msg']})") from None
    return manifest, hashlib.sha256(raw).hexdigest()[:16]


def verify(directory: Path, manifest: Manifest, read_text: Callable[[Path], str]) -> None:
    """Every text the manifest lists is still the one imported (``read_text``: the books' reader)."""
    seen: dict[str, str] = {}
    for imp in manifest.imports:
        for book in imp.books:
            if book in seen:
                raise HivethinkError(f"{directory / MANIFEST}: book {book!r} is claimed by two imports "
                                     f"({seen[book]} and {imp.system})")
            seen[book] = imp.system
        for key, text in sorted(imp.texts.items()):
            path = directory / f"{key}.txt"
            if not path.is_file():
                raise HivethinkError(f"{path}: missing, but {MANIFEST} lists it (imported from {imp.label})")
            if sha256(read_text(path)) != text.sha256:
                raise HivethinkError(
                    f"{path}: changed since it was imported from {imp.label} ({MANIFEST} holds another "
                    f"sha256): import again, or delete {MANIFEST} to use the directory as your own texts"
                )


def published(manifest: Manifest, digest: str, books: Iterable[str]) -> dict[str, object] | None:
    """What a record says about imported texts among ``books``: the manifest's digest and, per
    book, ``repo@commit`` or ``package==version``; None when none of them was imported."""
    wanted = set(books)
    sources = {b: imp.label for imp in manifest.imports for b in sorted(imp.books & wanted)}
    if not sources:
        return None
    return {"manifest": digest, "sources": dict(sorted(sources.items()))}
