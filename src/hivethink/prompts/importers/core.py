"""The importer: the authors' texts from their files into a prompts directory with ``SOURCE.json``.

An adapter (one module per system) declares a :class:`System`: the books it fills and one or
more :class:`Origin` (a git repository pinned to a commit, or an installed package pinned to a
version), each with the files that recognise it and, per template, where its text lives:

- :class:`Constant`: a Python constant, read with ``ast`` (:mod:`.pyread`), class attributes
  included;
- :class:`JsonKey`: a value in a JSON file, by key path;
- :class:`WholeFile`: a whole file;
- :class:`Built`: a text the authors build in code, from the adapter's builder run in a
  subprocess (:mod:`.child`).

Constants, keys and files that are ``str.format`` templates name their fields' hivethink
placeholders (``fields``). Templates the origin does not publish are filled from hivethink's
own texts and marked ``builtin`` in the manifest.

Everything is read, mapped and checked before anything is written; the directory is built
beside ``--out`` and moved into place complete. Any failure is one HivethinkError line.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from hivethink import prompts
from hivethink.errors import HivethinkError
from hivethink.prompts import source as manifest_mod
from hivethink.prompts.importers import pyread
from hivethink.prompts.importers.child import CLOSE, COMMAND, OPEN, BuiltText, hole

BUILDER_TIMEOUT_S = 300


@dataclass(frozen=True)
class Constant:
    file: str
    name: str  # dotted: NAME, Class.NAME, Class.method.NAME, ...call_assigned.keyword (see pyread)
    fields: Mapping[str, str] | None = None  # a str.format template: field -> placeholder
    holes: Mapping[str, str] | None = None  # an f-string: a hole's source text -> placeholder
    keywords: Mapping[str, str] | None = None  # literal tokens the authors replace -> placeholder
    wrappers: tuple[str, ...] = ()  # calls that wrap the literal (str subclasses: TextPrompt)
    how: Literal["constant"] = "constant"

    @property
    def object(self) -> str:
        return self.name


@dataclass(frozen=True)
class JsonKey:
    file: str
    path: tuple[str | int, ...]
    fields: Mapping[str, str] | None = None
    keywords: Mapping[str, str] | None = None
    how: Literal["json"] = "json"

    @property
    def object(self) -> str:
        return "".join(f"[{k!r}]" for k in self.path)


@dataclass(frozen=True)
class WholeFile:
    file: str
    fields: Mapping[str, str] | None = None
    keywords: Mapping[str, str] | None = None
    how: Literal["file"] = "file"

    @property
    def object(self) -> str:
        return "(whole file)"


@dataclass(frozen=True)
class FormatCall:
    """A ``str.format`` template the authors write inline, ``"...{}...".format(args)``."""

    file: str
    scope: str  # "__main__" (the script's main block) or a dotted path of classes and functions
    args: tuple[str, ...]  # the call's arguments as written: which call in the scope
    fields: Mapping[str, str] | None = None  # field (automatic ones by position: "0", ...) -> placeholder
    keywords: Mapping[str, str] | None = None
    how: Literal["constant"] = "constant"

    @property
    def object(self) -> str:
        return f"the str.format template in {self.scope} called with ({', '.join(self.args)})"


@dataclass(frozen=True)
class Built:
    file: str
    function: str  # what the manifest names: the authors' function (and the part of its text)
    how: Literal["builder"] = "builder"

    @property
    def object(self) -> str:
        return self.function


Text = Constant | JsonKey | WholeFile | FormatCall | Built


@dataclass(frozen=True)
class Same:
    """A rule the texts depend on, read from the same files: it must equal hivethink's."""

    file: str
    name: str  # the authors' constant
    ours: str  # "module:attribute" of hivethink's value


@dataclass(frozen=True)
class Origin:
    repository: str  # owner/name of a git repository, or a distribution's name
    kind: Literal["git", "package"]
    pinned: str  # the full commit, or the version
    marks: tuple[str, ...]  # files (under the root) that recognise it
    texts: Mapping[str, Text]  # "book/template" -> where its text lives
    builder: str | None = None  # "module:function" for the Built texts
    checks: tuple[Same, ...] = ()
    package: str | None = None  # a package origin: its import name (the root is its directory)

    def describe(self) -> str:
        if self.kind == "git":
            return f"a checkout of {self.repository} (with {', '.join(self.marks)})"
        return (f"the {self.repository} package (an installed name, its wheel, or a directory with "
                f"{', '.join(self.marks)})")


@dataclass(frozen=True)
class System:
    name: str
    books: tuple[str, ...]
    declares: str  # the module that declares those books
    origins: tuple[Origin, ...]


@dataclass
class Located:
    origin: Origin
    root: Path
    commit: str | None = None
    version: str | None = None
    modified: list[str] = field(default_factory=list)

    @property
    def at_pin(self) -> bool:
        pin = self.origin.pinned
        now = self.commit if self.origin.kind == "git" else self.version
        return now == pin and not self.modified


@dataclass
class Imported:
    """What an import wrote."""

    out: Path
    entry: manifest_mod.Import

    @property
    def counts(self) -> tuple[int, int]:
        texts = self.entry.texts.values()
        return sum(t.origin == "published" for t in texts), sum(t.origin == "builtin" for t in texts)


# -- where the source is ----------------------------------------------------------------------

def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _package_root(spec: str, origin: Origin) -> tuple[Path, str | None] | None:
    """A package origin's directory and version: ``spec`` is a directory (the package itself or
    one that holds it, e.g. site-packages or an unpacked wheel) or an installed distribution."""
    assert origin.package is not None
    path = Path(spec).expanduser()
    if path.is_dir():
        root = path if path.name == origin.package else path / origin.package
        if not root.is_dir():
            return None
        dist = sorted(root.parent.glob(f"{origin.repository.replace('-', '_')}-*.dist-info"))
        if dist:
            meta = (dist[-1] / "METADATA").read_text(encoding="utf-8", errors="replace")
            match = re.search(r"^Version:\s*(\S+)", meta, re.MULTILINE)
            return root, match.group(1) if match else None
        init = root / "__init__.py"
        try:
            version = pyread.constant(init, "__version__") if init.exists() else None
        except HivethinkError:
            version = None
        return root, version if isinstance(version, str) else None
    if spec != origin.repository:
        return None
    try:
        version = importlib.metadata.version(spec)
        found = importlib.util.find_spec(origin.package)
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]), version


def _files(origin: Origin) -> list[str]:
    return sorted({t.file for t in origin.texts.values()} | {c.file for c in origin.checks} | set(origin.marks))


@contextlib.contextmanager
def unpacked(spec: str) -> Iterator[str]:
    """SOURCE as a directory: a wheel file (``.whl``, a zip of the package and its dist-info) is
    unpacked into a temporary directory for as long as the import reads it; anything else is
    passed on as it is."""
    path = Path(spec).expanduser()
    if path.suffix != ".whl" or not path.is_file():
        yield spec
        return
    with tempfile.TemporaryDirectory(prefix="hivethink-wheel-") as tmp:
        try:
            with zipfile.ZipFile(path) as wheel:
                wheel.extractall(tmp)  # zipfile drops absolute parts and ".." from member names
        except (zipfile.BadZipFile, OSError) as err:
            raise HivethinkError(f"{spec}: not a readable wheel ({err})") from None
        yield tmp


def locate(system: System, spec: str, allow_unpinned: bool, shown: str | None = None) -> Located:
    """The origin ``spec`` is (recognised by its files), and the commit or version it is at
    (``shown``: what the user named, when ``spec`` is a wheel's unpacked directory)."""
    shown = shown or spec
    for origin in system.origins:
        if origin.kind == "package":
            found = _package_root(spec, origin)
            if found is None or not all((found[0] / m).is_file() for m in origin.marks):
                continue
            located = Located(origin, found[0].resolve(), version=found[1])
            now = f"version {located.version or 'unknown'}"
        else:
            root = Path(spec).expanduser()
            if not all((root / m).is_file() for m in origin.marks):
                continue
            located = Located(origin, root.resolve())
            top = _git(root, "rev-parse", "--show-toplevel")
            if top is None or Path(top.strip()).resolve() != located.root:
                if not allow_unpinned:
                    raise HivethinkError(f"{spec}: not the top of a git checkout of {origin.repository}, so its "
                                         f"commit is unknown (--allow-unpinned imports it anyway, commit unrecorded)")
                return located
            located.commit = (_git(root, "rev-parse", "HEAD") or "").strip() or None
            status = _git(root, "status", "--porcelain", "--", *_files(origin)) or ""
            located.modified = sorted(line[3:] for line in status.splitlines() if line.strip())  # "XY path"
            now = f"commit {located.commit}" + (f" with local changes to {', '.join(located.modified)}"
                                                 if located.modified else "")
        if not located.at_pin and not allow_unpinned:
            raise HivethinkError(f"{shown}: {origin.repository} at {now}, but the preset is pinned to "
                                 f"{origin.pinned} (check out the pinned one, or pass --allow-unpinned to "
                                 "import these texts and record where they came from)")
        return located
    expected = " or ".join(o.describe() for o in system.origins)
    raise HivethinkError(f"{shown}: not {expected}")


# -- reading and mapping ----------------------------------------------------------------------

def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HivethinkError(f"{path}: no such file (the importer expects a text there; was it moved?)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise HivethinkError(f"{path}: cannot read: {err}") from None


def _json_value(path: Path, keys: tuple[str | int, ...]) -> Any:
    try:
        value = json.loads(_read_file(path))
    except ValueError as err:
        raise HivethinkError(f"{path}: not valid JSON ({err})") from None
    for i, key in enumerate(keys):
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            where = "".join(f"[{k!r}]" for k in keys[: i + 1])
            raise HivethinkError(f"{path}: no key {where} (the importer expects a text there)") from None
    return value


def format_holes(text: str, fields: Mapping[str, str], where: str) -> str:
    """A ``str.format`` template with holes for its fields (automatic fields ``{}`` are named by
    their position: ``"0"``, ``"1"``, ...)."""
    out = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as err:
        raise HivethinkError(f"{where}: not a format template ({err})") from None
    position = 0
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        if name == "":
            name, position = str(position), position + 1
        if name not in fields or spec or conversion:
            raise HivethinkError(f"{where}: format field {{{name}}} has no hivethink placeholder "
                                 f"(mapped: {', '.join(sorted(fields)) or 'none'})")
        out.append(hole(fields[name]))
    return "".join(out)


def keyword_holes(text: str, keywords: Mapping[str, str]) -> str:
    """A text in which the authors replace literal tokens (CAMEL's ``<TASK>``), with holes for them."""
    for token, name in keywords.items():
        text = text.replace(token, hole(name))
    return text


_HOLE = re.compile(re.escape(OPEN) + r"([A-Za-z_][A-Za-z0-9_]*)" + re.escape(CLOSE))


def to_template(text: str, where: str) -> str:
    """A text with holes -> a template: holes become placeholders, and double braces of the
    authors' own that hivethink would read as a placeholder are written with the escapes."""
    text = prompts.PLACEHOLDER.sub(lambda m: hole("open_braces") + m.group(0)[2:-2] + hole("close_braces"), text)
    template = _HOLE.sub(lambda m: "{{" + m.group(1) + "}}", text)
    if OPEN in template or CLOSE in template:
        raise HivethinkError(f"{where}: a malformed placeholder hole in the built text")
    return template


def from_format(text: str, fields: Mapping[str, str], where: str) -> str:
    """A ``str.format`` template as hivethink's template."""
    return to_template(format_holes(text, fields, where), where)


def run_child(ref: str, root: Path, given: Any = None, what: str = "builder") -> Any:
    """Run ``ref`` (``module:function``, see :mod:`.child`) on the authors' code at ``root`` in a
    fresh interpreter, in a scratch directory (whatever the authors' code writes lands there, and
    the user's checkout is left as it was); -> its JSON result. ``given``: its JSON input."""
    with tempfile.TemporaryDirectory(prefix="hivethink-import-") as tmp:
        out = Path(tmp) / "built.json"
        args = [sys.executable, "-c", COMMAND, ref, str(root), str(out)]
        if given is not None:
            (Path(tmp) / "given.json").write_text(json.dumps(given), encoding="utf-8")
            args.append(str(Path(tmp) / "given.json"))
        (Path(tmp) / "cwd").mkdir()
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=BUILDER_TIMEOUT_S,
                                  cwd=Path(tmp) / "cwd", env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        except subprocess.TimeoutExpired:
            raise HivethinkError(f"{root}: the authors' {what} ran past {BUILDER_TIMEOUT_S} s") from None
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
            raise HivethinkError(f"{root}: the authors' {what} failed: {lines[-1] if lines else done.returncode}")
        return json.loads(out.read_text(encoding="utf-8"))


def _run_builder(origin: Origin, root: Path) -> dict[str, BuiltText]:
    assert origin.builder is not None
    result: dict[str, BuiltText] = run_child(origin.builder, root)
    return result


def _render(template: str, values: Mapping[str, str]) -> str:
    filled = {**values, **prompts.ESCAPES}
    return prompts.PLACEHOLDER.sub(lambda m: filled.get(m.group(1), m.group(0)), template)


def read_texts(located: Located, books: Mapping[str, prompts.Book]) -> dict[str, tuple[str, str]]:
    """"book/template" -> (template, the authors' text) for every text the origin publishes."""
    origin, root = located.origin, located.root
    built: dict[str, BuiltText] | None = None
    out: dict[str, tuple[str, str]] = {}
    # what the files hold first: a moved constant fails before the authors' code runs
    for key, where in sorted(origin.texts.items(), key=lambda kv: isinstance(kv[1], Built)):
        book, _, template = key.partition("/")
        allowed = books[book].templates[template]
        path = root / where.file
        label = f"{path} {where.object}"
        if isinstance(where, Built):
            built = _run_builder(origin, root) if built is None else built
            if key not in built:
                raise HivethinkError(f"{path}: the builder gave no text for {key} ({where.function})")
            raw = built[key]["text"]
        elif isinstance(where, Constant):
            raw = pyread.constant(path, where.name, holes=where.holes, wrappers=where.wrappers)
        elif isinstance(where, JsonKey):
            raw = _json_value(path, where.path)
        elif isinstance(where, FormatCall):
            raw = pyread.format_literal(path, where.scope, where.args)
        else:
            raw = _read_file(path)
        if not isinstance(raw, str):
            raise HivethinkError(f"{label}: not a text (a {type(raw).__name__})")
        marked = raw  # holes where hivethink's placeholders go
        if not isinstance(where, Built) and where.fields is not None:
            marked = format_holes(raw, where.fields, label)
        if not isinstance(where, Built) and where.keywords:
            marked = keyword_holes(marked, where.keywords)
        text = to_template(marked, label)
        unknown = sorted(prompts.placeholders(text) - allowed)
        if unknown:
            raise HivethinkError(f"{label}: maps to placeholder(s) {', '.join(unknown)}, which {key} does not take "
                                 f"(it takes: {', '.join(sorted(allowed)) or 'none'})")
        authors = raw  # a constant, key or file: the authors' text as it stands (fields unfilled)
        if isinstance(where, Constant) and where.holes:
            authors = to_template(raw, label)  # the f-string with its holes as placeholders
        if isinstance(where, Built):
            assert built is not None
            checks = built[key]["checks"]
            for check in checks:
                if _render(text, check["values"]) != check["real"]:
                    raise HivethinkError(f"{label}: hivethink's rendering of the imported {key} differs from the "
                                         f"authors' text built with {sorted(check['values'])} (the mapping is wrong)")
            authors = checks[0]["real"] if checks else raw
        out[key] = (text, authors)
    return {key: out[key] for key in origin.texts}


def _ours(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def run_checks(located: Located) -> dict[str, str]:
    done = {}
    for check in located.origin.checks:
        theirs = pyread.constant(located.root / check.file, check.name)
        ours = _ours(check.ours)
        if (list(theirs) if isinstance(theirs, (tuple, list)) else theirs) != (
                list(ours) if isinstance(ours, (tuple, list)) else ours):
            raise HivethinkError(f"{located.root / check.file}: {check.name} is {theirs!r}, hivethink's "
                                 f"{check.ours} is {ours!r}: these texts would run under another rule")
        done[check.name] = f"{check.file}: equal to {check.ours}"
    return done


# -- writing ----------------------------------------------------------------------------------

def _existing(out: Path, books: tuple[str, ...]) -> manifest_mod.Manifest | None:
    """An ``--out`` that exists may only be an earlier import of other systems (they are kept)."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise HivethinkError(f"--out {out}: exists and is not a directory")
    if not any(out.iterdir()):
        return None
    found = manifest_mod.read(out)
    if found is None:
        raise HivethinkError(f"--out {out}: exists and was not written by `hivethink prompts import` "
                             "(choose a new directory)")
    prompts.check_directory(out)
    taken = sorted(set(books) & {p.name for p in out.iterdir() if p.is_dir()})
    if taken:
        raise HivethinkError(f"--out {out}: already holds the book(s) {', '.join(taken)} (remove them, or "
                             "choose a new directory)")
    return found[0]


def _code_version() -> str:
    from hivethink.lab.records import code_version

    version, commit = code_version()
    return version + (f" ({commit})" if commit else "")


def import_system(system: System, spec: str, out: Path, *, allow_unpinned: bool = False) -> Imported:
    """Read ``system``'s texts from ``spec`` and write the prompts directory ``out`` (the modules
    that declare the books of any system ``out`` may already hold must have been imported)."""
    importlib.import_module(system.declares)
    with unpacked(spec) as where:
        located = locate(system, where, allow_unpinned, shown=spec)
        # the books this origin fills (MetaGPT's tags fill one book each)
        names = tuple(b for b in system.books if any(k.partition("/")[0] == b for k in located.origin.texts))
        books = {b: prompts.books()[b] for b in names}
        earlier = _existing(out, names)
        texts = read_texts(located, books)
        checks = run_checks(located)
        source = str(Path(spec).expanduser().resolve()) if where != spec else str(located.root)
    origin = located.origin
    entries: dict[str, manifest_mod.TextSource] = {}
    files: dict[str, str] = {}
    for name, book in books.items():
        for template in sorted(book.templates):
            key = f"{name}/{template}"
            if key in texts:
                text, authors = texts[key]
                found = origin.texts[key]
                entries[key] = manifest_mod.TextSource(
                    origin="published", sha256=manifest_mod.sha256(text), file=found.file,
                    object=found.object, how=found.how, authors_sha256=manifest_mod.sha256(authors))
            else:
                text = book.builtin_text(template)
                entries[key] = manifest_mod.TextSource(origin="builtin", sha256=manifest_mod.sha256(text))
            files[key] = text
    entry = manifest_mod.Import(
        system=system.name, repository=origin.repository, kind=origin.kind, source=source,
        commit=located.commit, version=located.version, pinned=origin.pinned, at_pin=located.at_pin,
        modified=located.modified, hivethink=_code_version(),
        imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), texts=entries, checks=checks)
    manifest = manifest_mod.Manifest(imports=[*(earlier.imports if earlier else []), entry])
    _write(out, files, manifest, keep=earlier is not None)
    return Imported(out, entry)


def _write(out: Path, files: Mapping[str, str], manifest: manifest_mod.Manifest, keep: bool) -> None:
    """Build the directory beside ``out`` (with what ``out`` holds when ``keep``), check it as
    ``--prompts`` will, and move it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the directory is an ordinary one
    try:
        if keep:
            shutil.copytree(out, tmp, dirs_exist_ok=True)
        for key, text in files.items():
            path = tmp / f"{key}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")  # the reader drops one trailing newline
        (tmp / manifest_mod.MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        prompts.check_directory(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "dir")
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
