"""``hivethink prompts import``: the authors' texts from fixture repositories written in the
authors' file layout and names (our own placeholder sentences, never theirs). Every text is
found, the placeholders are mapped, hivethink renders exactly what the authors' code builds, the
manifest names each text; bad sources are one line, exit 2, and leave nothing half-written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from hivethink import prompts
from hivethink.cli.main import main
from hivethink.engine.hive import HOGWILD, HiveConfig, HiveJob, chat_ids
from hivethink.engine.hive.prompt import HiveText
from hivethink.errors import HivethinkError
from hivethink.metrics.mast import mast_prompt, render_trace
from hivethink.prompts import importers, source
from hivethink.prompts.importers import core
from hivethink.prompts.importers.mast import EchoClient
from hivethink.trace import Event

FIXTURES = Path(__file__).parent / "fixtures"
PROBLEM = "Fixture problem: what is 2 + 2?"
HOGWILD_PUBLISHED = {"history_title", "others_title", "own_title", "marker", "check", "finisher", "step_header",
                     "first_step_lead", "first_step_other", "user_turn", "rules", "examples", "collaboration",
                     "collaboration_examples", "task"}


def git_repo(root: Path, fixture: str, edit: Callable[[Path], None] | None = None) -> tuple[Path, str]:
    """A git checkout of a fixture (edited first), one commit: (its path, that commit)."""
    shutil.copytree(FIXTURES / fixture, root)
    if edit is not None:
        edit(root)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    return root, head.stdout.strip()


def pin(monkeypatch: pytest.MonkeyPatch, system: str, pinned: str, index: int = 0) -> None:
    """Pin the system's origin to the fixture's commit (or version)."""
    chosen = importers.SYSTEMS[system]
    origins = list(chosen.origins)
    origins[index] = replace(origins[index], pinned=pinned)
    monkeypatch.setitem(importers.SYSTEMS, system, replace(chosen, origins=tuple(origins)))


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["prompts", *[str(a) for a in args]])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def hogwild(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The hogwild fixture checkout, imported once: (checkout, prompts directory, commit)."""
    base = tmp_path_factory.mktemp("hogwild")
    repo, head = git_repo(base / "hogwild_llm", "hogwild_llm")
    monkeypatch = pytest.MonkeyPatch()
    pin(monkeypatch, "hogwild", head)
    try:
        importers.run("hogwild", str(repo), base / "published")
    finally:
        monkeypatch.undo()
    return repo, base / "published", head


@pytest.fixture(autouse=True)
def builtin_books():
    yield
    prompts.use_directory(None)


def test_every_hogwild_text_is_found_and_its_placeholders_mapped(hogwild):
    repo, out, head = hogwild
    manifest = json.loads((out / "SOURCE.json").read_text(encoding="utf-8"))
    [entry] = manifest["imports"]
    assert (entry["repository"], entry["commit"], entry["at_pin"], entry["kind"]) == (
        "eqimp/hogwild_llm", head, True, "git")
    texts = entry["texts"]
    assert set(texts) == {f"hogwild/{t}" for t in HOGWILD.templates}
    assert {k.split("/")[1] for k, t in texts.items() if t["origin"] == "published"} == HOGWILD_PUBLISHED
    assert {k for k, t in texts.items() if t["origin"] == "builtin"} == {"hogwild/solo", "hogwild/stream_header"}
    assert texts["hogwild/history_title"] | {"sha256": "-"} == {
        "origin": "published", "file": "formatting.py", "object": "MathFormatting.history_header",
        "how": "constant", "sha256": "-", "authors_sha256": source.sha256("=== FIXTURE HISTORY ===")}
    assert texts["hogwild/rules"]["how"] == "builder"
    assert set(entry["checks"]) == {"MathFormatting.end_of_step_chars", "MathFormatting.step_separator"}
    for key, text in texts.items():
        assert source.sha256(prompts.read_text(out / f"{key}.txt")) == text["sha256"]
    book = out / "hogwild"
    rules = prompts.read_text(book / "rules.txt")
    assert "Fixture rules for {{count}} workers called {{workers}}; {{a}} leads, {{a}} and {{b}} agree." in rules
    assert "'{{history_title}}', '{{others_title}}', '{{own_title}}', pivot {{marker}}" in rules
    examples = prompts.read_text(book / "examples.txt")
    assert "{{turn_open}}Fixture question one.{{turn_close}}{{think}}\n\n{{history_title}}" in examples
    assert prompts.read_text(book / "first_step_lead.txt") == "Fixture lead {{name}} proposes"
    assert prompts.read_text(book / "step_header.txt") == "**{{name}} [{{index}}]:** "
    assert prompts.read_text(book / "user_turn.txt") == "{{instruction}}\n\n{{problem}}"
    assert prompts.read_text(book / "finisher.txt") == "\n\nFixture finisher: out of time, answer \\boxed{"
    assert prompts.read_text(book / "solo.txt") == HOGWILD.builtin_text("solo")
    assert not subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                              text=True).stdout  # the checkout is left as it was


@pytest.mark.parametrize("workers", [2, 3])
def test_hivethink_renders_the_imported_texts_as_the_authors_code_builds_them(hogwild, tiny_smol, workers):
    repo, out, _ = hogwild
    names = ("Alice", "Bob", "Carol")[:workers]
    authors = load(repo / "formatting.py", "fixture_formatting").MathFormatting(tiny_smol.tokenizer, workers=names)
    prompts.use_directory(out)
    job = HiveJob(tiny_smol, HiveConfig(workers=workers), PROBLEM)
    conversation = [{"role": "user", "content": authors.system_prompt + authors.sep + PROBLEM}]
    assert authors.get_full_prompt(PROBLEM) == tiny_smol.tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True)
    assert job.prompt == chat_ids(tiny_smol.tokenizer, conversation)  # the whole prompt, token for token
    assert job.decode(job.workers[0].pending) == authors.worker_prompts[0]
    assert job.decode(job.workers[1].pending) == authors.worker_prompts[1]
    titles = HiveText.titles()
    assert "\n\n" + titles["others_title"] + "\n\n" == authors.current_step_header
    assert titles["marker"] + "\n\n" + titles["own_title"] + "\n\n" == authors.current_worker_header
    assert HOGWILD.render("check") == authors.s1_collab_message
    assert HOGWILD.render("finisher") == authors.s1_finisher_suffix


def test_the_mast_judge_from_a_checkout_is_the_authors_prompt(tmp_path, monkeypatch):
    repo, head = git_repo(tmp_path / "openevolve-mast", "openevolve_mast")
    pin(monkeypatch, "mast", head)
    done = importers.run("mast", str(repo), tmp_path / "published")
    assert done.counts == (3, 0) and done.entry.label == f"mert-cemri/openevolve-mast@{head[:12]}"
    texts = done.entry.texts
    assert (texts["mast/definitions"].how, texts["mast/examples"].object) == ("file", "(whole file)")
    book = tmp_path / "published" / "mast"
    taxonomy = repo / "openevolve" / "taxonomy_definitions_examples"
    assert prompts.read_text(book / "examples.txt") == (taxonomy / "examples.txt").read_text()  # no final newline
    assert prompts.read_text(book / "definitions.txt") == (taxonomy / "definitions.txt").read_text()
    prompts.use_directory(tmp_path / "published")
    events = [Event(kind="prompt", worker="Alice", text="Solve."), Event(kind="step", worker="Bob", text="Done.")]
    evaluator = load(repo / "openevolve/examples/multi_agent_evolution_v2/evaluator.py", "fixture_evaluator")
    assert mast_prompt(events) == evaluator.openai_evaluator(render_trace(events), client=EchoClient())


def test_the_mast_judge_from_the_package_and_a_second_system_in_the_same_directory(hogwild, tmp_path):
    out = tmp_path / "published"
    shutil.copytree(hogwild[1], out)
    done = importers.run("mast", str(FIXTURES / "agentdash_pkg"), out)  # pinned 0.1.0, as the fixture
    assert done.entry.label == "agentdash==0.1.0" and done.entry.kind == "package" and done.entry.at_pin
    book = out / "mast"
    assert prompts.read_text(book / "examples.txt") == ""  # what the package loads: no examples file
    assert prompts.read_text(book / "definitions.txt").startswith("\nFixture fallback definitions:")
    assert prompts.read_text(book / "judge.txt").endswith("Definitions: \n{{definitions}} \nExamples: \n{{examples}}")
    manifest = json.loads((out / "SOURCE.json").read_text(encoding="utf-8"))
    assert [i["system"] for i in manifest["imports"]] == ["hogwild", "mast"]
    prompts.use_directory(out)
    assert prompts.published(["hogwild", "mast", "coral"])["sources"] == {
        "hogwild": f"eqimp/hogwild_llm@{hogwild[2][:12]}", "mast": "agentdash==0.1.0"}
    assert prompts.published(["coral"]) is None


def test_an_installed_package_is_found_by_name(monkeypatch):
    found = FIXTURES / "agentdash_pkg" / "agentdash"
    monkeypatch.setattr(core.importlib.metadata, "version", lambda name: "0.1.0")
    monkeypatch.setattr(core.importlib.util, "find_spec",
                        lambda name: type("Spec", (), {"submodule_search_locations": [str(found)]})())
    located = core.locate(importers.SYSTEMS["mast"], "agentdash", allow_unpinned=False)
    assert (located.root, located.version, located.at_pin) == (found.resolve(), "0.1.0", True)


def _rename_constant(root: Path) -> None:
    path = root / "formatting.py"
    path.write_text(path.read_text().replace("history_header", "past_header"))


def _broken_builder(root: Path) -> None:
    path = root / "formatting.py"
    path.write_text(path.read_text().replace('    wrap = wrap_shots_with_chat_template\n',
                                             '    raise ValueError("fixture builder is broken")\n'))


def _clashing_text(root: Path) -> None:
    path = root / "formatting.py"
    path.write_text(path.read_text().replace('"[cut]"', '"{{cut}}"'))


@pytest.mark.parametrize(("edit", "message"), [
    (_rename_constant, r"formatting.py: no constant MathFormatting.history_header \(the importer expects it there"),
    (_broken_builder, r"the authors' builder failed: ValueError: fixture builder is broken \(formatting.py:\d+\)"),
])
def test_a_source_the_importer_cannot_read_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, edit,
                                                                          message):
    repo, head = git_repo(tmp_path / "hogwild_llm", "hogwild_llm", edit)
    pin(monkeypatch, "hogwild", head)
    code, err = cli("import", "hogwild", repo, "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hogwild_llm"]  # no output, no temporary


def test_another_commit_or_local_changes_or_no_checkout_need_allow_unpinned(tmp_path, capsys):
    repo, head = git_repo(tmp_path / "hogwild_llm", "hogwild_llm")
    code, err = cli("import", "hogwild", repo, "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and f"eqimp/hogwild_llm at commit {head}, but the preset is pinned to 1a87a99d7a13" in err
    assert "--allow-unpinned" in err and not (tmp_path / "out").exists()
    code, _ = cli("import", "hogwild", repo, "--out", tmp_path / "out", "--allow-unpinned", capsys=capsys)
    [entry] = json.loads((tmp_path / "out" / "SOURCE.json").read_text())["imports"]
    assert code == 0 and (entry["commit"], entry["at_pin"]) == (head, False)

    (repo / "formatting.py").write_text((repo / "formatting.py").read_text() + "\n# edited\n")
    code, err = cli("import", "hogwild", repo, "--out", tmp_path / "out2", capsys=capsys)
    assert code == 2 and "with local changes to formatting.py" in err
    shutil.rmtree(repo / ".git")
    code, err = cli("import", "hogwild", repo, "--out", tmp_path / "out2", capsys=capsys)
    assert code == 2 and "not the top of a git checkout of eqimp/hogwild_llm" in err


def test_a_source_of_another_kind_and_bad_outputs_are_one_line(hogwild, tmp_path, capsys):
    code, err = cli("import", "hogwild", FIXTURES / "openevolve_mast", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "not a checkout of eqimp/hogwild_llm (with formatting.py, generation.py" in err
    code, err = cli("import", "mast", FIXTURES / "hogwild_llm", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "not a checkout of mert-cemri/openevolve-mast" in err and "or the agentdash package" in err
    code, err = cli("import", "nosuch", ".", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "no importer for 'nosuch' (systems: agentsnet, camel, consensus-game, coral, debate-du, hogwild, mast, metagpt)" in err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own\n")
    code, err = cli("import", "mast", FIXTURES / "agentdash_pkg", "--out", tmp_path / "mine", capsys=capsys)
    assert code == 2 and "was not written by `hivethink prompts import`" in err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    code, err = cli("import", "hogwild", hogwild[0], "--out", hogwild[1], "--allow-unpinned", capsys=capsys)
    assert code == 2 and "already holds the book(s) hogwild" in err


def test_a_text_edited_after_the_import_is_refused_where_it_is_used(hogwild, tmp_path):
    out = tmp_path / "published"
    shutil.copytree(hogwild[1], out)
    prompts.use_directory(out)  # as imported: fine
    (out / "hogwild" / "check.txt").write_text("My own check? ")
    with pytest.raises(HivethinkError, match=r"check.txt: changed since it was imported from eqimp/hogwild_llm@"):
        prompts.use_directory(out)
    (out / "hogwild" / "check.txt").unlink()
    with pytest.raises(HivethinkError, match=r"missing template\(s\) check.txt"):
        prompts.check_directory(out)


def test_double_braces_of_the_authors_are_kept_with_the_escapes(tmp_path, monkeypatch):
    repo, head = git_repo(tmp_path / "hogwild_llm", "hogwild_llm", _clashing_text)
    pin(monkeypatch, "hogwild", head)
    importers.run("hogwild", str(repo), tmp_path / "out")
    assert prompts.read_text(tmp_path / "out" / "hogwild" / "marker.txt") == "{{open_braces}}cut{{close_braces}}"
    prompts.use_directory(tmp_path / "out")
    assert HOGWILD.render("marker") == "{{cut}}"


def test_format_fields_become_placeholders():
    assert core.from_format("Q: {question}\nA {{literal}} brace", {"question": "problem"}, "x") == (
        "Q: {{problem}}\nA {literal} brace")
    with pytest.raises(HivethinkError, match=r"x: format field \{answer\} has no hivethink placeholder"):
        core.from_format("{answer}", {"question": "problem"}, "x")
    assert core.from_format("{} and {}", {"0": "a", "1": "b"}, "x") == "{{a}} and {{b}}"  # automatic fields


def test_json_keys_are_read_by_path(tmp_path):
    path = tmp_path / "library.json"
    path.write_text(json.dumps({"prompts": [{"system": "Fixture system text."}]}))
    assert core._json_value(path, ("prompts", 0, "system")) == "Fixture system text."
    with pytest.raises(HivethinkError, match=r"no key \['prompts'\]\[0\]\['user'\]"):
        core._json_value(path, ("prompts", 0, "user"))


def test_export_writes_hivethinks_own_texts_as_a_directory_that_validates(tmp_path, capsys):
    code, _ = cli("export", tmp_path / "mine", "--book", "mast", "--book", "hogwild", capsys=capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["hogwild", "mast"]
    assert prompts.read_text(tmp_path / "mine" / "mast" / "judge.txt") == prompts.books()["mast"].builtin_text("judge")
    prompts.check_directory(tmp_path / "mine")
    code, err = cli("export", tmp_path / "mine", capsys=capsys)
    assert code == 2 and "exists and is not empty" in err
    code, err = cli("export", tmp_path / "other", "--book", "nosuch", capsys=capsys)
    assert code == 2 and "no prompt book nosuch" in err and not (tmp_path / "other").exists()


# -- the text protocols: every text found, mapped and replayed against the published driver -----

PROTOCOLS = {  # case -> (fixture, the importer's module, texts of hivethink's own, one imported text)
    "agentsnet": ("agentsnet", "agentsnet", {"agentsnet-tasks/baseline"},
                  ("agentsnet/request", "{{cot}} Fixture: {{rounds_left}} rounds left; write to {{neighbours}}.")),
    "consensus-game": ("byzantine_consensus", "consensus_game", set(),
                       ("consensus-game/retry_propose_honest",
                        "\n\nFixture retry {{attempt}}/{{attempts}}: all three fields, please.")),
    "camel": ("camel_paper", "camel", None, None),
    "coral": ("collaborative_reasoner", "coral", None, None),
    "debate-du": ("llm_multiagent_debate", "debate_du", None, None),
    "metagpt-0.1.0": ("metagpt_010", "metagpt", set(),
                      ("metagpt-0.1.0/prd_search", "### Fixture results\n{{results}}\n\n### Fixture summary\n{{summary}}")),
    "metagpt-0.8.1": ("metagpt_081", "metagpt", {"metagpt-0.8.1/code_file", "metagpt-0.8.1/code_block"},
                      ("metagpt-0.8.1/prd_nodes", "* Language (<class 'str'>): Fixture: the language.\n"
                                                  "* Goals (list[str]): Fixture: up to two goals.\n")),
}
CASES = {"metagpt-0.1.0": ("metagpt", 1), "metagpt-0.8.1": ("metagpt", 0)}  # case -> (system, its origin's index)


def case_of(case: str) -> tuple[str, int]:
    return CASES.get(case, (case, 0))


def import_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> tuple[Path, Path]:
    """The case's fixture checkout, pinned and imported: (checkout, prompts directory), with
    every text the origin publishes imported and named in the manifest."""
    fixture, _, own, sample = PROTOCOLS[case]
    system, index = case_of(case)
    repo, head = git_repo(tmp_path / fixture, fixture)
    pin(monkeypatch, system, head, index)
    origin = importers.SYSTEMS[system].origins[index]
    out = tmp_path / "published"
    done = importers.run(system, str(repo), out)
    texts = done.entry.texts
    assert (done.entry.commit, done.entry.at_pin) == (head, True)
    assert {k for k, t in texts.items() if t.origin == "published"} == set(origin.texts)
    if own is not None:
        assert {k for k, t in texts.items() if t.origin == "builtin"} == own
    for key, text in texts.items():
        assert source.sha256(prompts.read_text(out / f"{key}.txt")) == text.sha256
        where = origin.texts.get(key)
        assert text.origin == "builtin" or (text.file, text.object, text.how) == (where.file, where.object, where.how)
    assert {k.partition("/")[0] for k in texts} == {k.partition("/")[0] for k in origin.texts}  # its books only
    if case == "metagpt-0.1.0":  # the role defaults, read from the __init__ parameters
        assert prompts.read_text(out / "metagpt-0.1.0" / "architect_goal.txt") == "Fixture-architect-goal"
        assert prompts.read_text(out / "metagpt-0.1.0" / "prefix.txt") == (
            "Fixture: {{profile}} called {{name}}; aim: {{goal}}; limits: {{constraints}}. ")
    if sample is not None:
        assert prompts.read_text(out / f"{sample[0]}.txt") == sample[1]
    return repo, out


@pytest.mark.parametrize("case", ["agentsnet", "consensus-game", "metagpt-0.1.0"])
def test_every_text_of_a_protocol_is_found_mapped_and_named(tmp_path, monkeypatch, case):
    import_protocol(tmp_path, monkeypatch, case)


def test_metagpt_081_constants_and_the_action_nodes_built_by_the_authors_code(tmp_path, monkeypatch):
    """v0.8.1: constants read with ast (class attributes, format templates with their braces),
    the node lists, examples and constraint built by the checkout's ActionNode.compile in a
    subprocess (tenacity, the LLM and config modules are stand-ins), the two inline joiners
    hivethink's own; a v0.1.0 book is not written beside it."""
    _, out = import_protocol(tmp_path, monkeypatch, "metagpt-0.8.1")
    book = out / "metagpt-0.8.1"
    assert not (out / "metagpt-0.1.0").exists()
    assert prompts.read_text(book / "qa_constraints.txt") == "Fixture-qa-constraints"
    assert prompts.read_text(book / "prefix.txt") == "Fixture: {{name}} works as {{profile}}; aim: {{goal}}. "
    assert prompts.read_text(book / "constraint.txt") == "fixture limits: {{constraints}}. "
    assert 'def fixture(): return {"braces": "kept"}' in prompts.read_text(book / "review_example.txt")
    assert prompts.read_text(book / "node_constraint.txt") == (
        "Fixture language rule.\nFixture format rule: inside [CONTENT][/CONTENT].")
    assert prompts.read_text(book / "prd_example.txt") == (
        '[CONTENT]\n{\n  "Language": "en_us",\n  "Goals": [\n    "Fixture goal {one}",\n    "Fixture goal two"\n  ]\n}'
        "\n[/CONTENT]")
    assert "classDiagram\\n    class FixtureMain" in prompts.read_text(book / "design_example.txt")
    assert prompts.read_text(book / "summarize.txt") == (
        "\nFixture summary.\n{{system_design}}\n{{task}}\n{{code_blocks}}\n")
    manifest = json.loads((out / "SOURCE.json").read_text())["imports"][0]["texts"]
    assert manifest["metagpt-0.8.1/tasks_nodes"]["how"] == "builder"
    assert manifest["metagpt-0.8.1/tasks_nodes"]["object"] == "PM_NODE.compile (its instruction)"
    # the other tag's book goes beside it, into the same directory, once
    repo010, head010 = git_repo(tmp_path / "metagpt_010", "metagpt_010")
    pin(monkeypatch, "metagpt", head010, 1)
    importers.run("metagpt", str(repo010), out)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["metagpt-0.1.0", "metagpt-0.8.1"]
    assert [i["commit"] for i in json.loads((out / "SOURCE.json").read_text())["imports"]][1] == head010
    with pytest.raises(HivethinkError, match=r"already holds the book\(s\) metagpt-0.1.0 \("):
        importers.run("metagpt", str(repo010), out)


@pytest.mark.slow  # two to four interpreters per system (the builder, the authors' drivers)
@pytest.mark.parametrize("case", sorted(PROTOCOLS))
def test_a_protocol_runs_with_the_imported_texts_exactly_as_the_published_driver(tmp_path, monkeypatch, case):
    """The preset, run on the imported directory with scripted replies, sends exactly the
    requests the authors' driver (from the same checkout, on the same replies) builds."""
    repo, out = import_protocol(tmp_path, monkeypatch, case)
    prompts.use_directory(out)
    rows = importlib.import_module(f"hivethink.prompts.importers.{PROTOCOLS[case][1]}").fidelity(repo)
    assert len(rows) > 4
    assert [what for what, ours, theirs in rows if ours != theirs] == []


def _agentsnet_moved(root: Path) -> None:
    path = root / "LiteralMessagePassing.py"
    path.write_text(path.read_text().replace("fallback_json_request", "ask_json_again"))


def _consensus_moved(root: Path) -> None:
    path = root / "byzantine_consensus_game" / "bcg_agents.py"
    path.write_text(path.read_text().replace("max_json_retries = 3", "tries = 3").replace("max_json_retries", "tries"))


def _metagpt_moved(root: Path) -> None:
    path = root / "metagpt" / "roles" / "role.py"
    path.write_text(path.read_text().replace("PREFIX_TEMPLATE", "ROLE_PREFIX"))


def _metagpt_081_moved_constant(root: Path) -> None:
    path = root / "metagpt" / "roles" / "engineer.py"
    path.write_text(path.read_text().replace("IS_PASS_PROMPT", "DONE_PROMPT"))


def _metagpt_081_moved_node(root: Path) -> None:
    path = root / "metagpt" / "actions" / "project_management_an.py"
    path.write_text(path.read_text().replace("PM_NODE =", "TASKS_NODE ="))


@pytest.mark.parametrize(("case", "fixture", "edit", "message"), [
    ("metagpt-0.1.0", "metagpt_010", _metagpt_moved,
     r"role.py: no constant PREFIX_TEMPLATE \(the importer expects it there"),
    ("metagpt-0.8.1", "metagpt_081", _metagpt_081_moved_constant,
     r"engineer.py: no constant IS_PASS_PROMPT \(the importer expects it there"),
    ("metagpt-0.8.1", "metagpt_081", _metagpt_081_moved_node,
     r"the authors' builder failed: AttributeError: .*'PM_NODE'"),
    ("agentsnet", "agentsnet", _agentsnet_moved,
     r"the authors' builder failed: AttributeError: .*'fallback_json_request'"),
    ("consensus-game", "byzantine_consensus", _consensus_moved,
     r"bcg_agents.py: no constant HonestBCGAgent._decide_next_value_json.max_json_retries"),
])
def test_a_moved_text_or_another_commit_of_a_protocol_is_one_line(tmp_path, monkeypatch, capsys, case, fixture,
                                                                  edit, message):
    system, index = case_of(case)
    repo, head = git_repo(tmp_path / fixture, fixture)
    code, err = cli("import", system, repo, "--out", tmp_path / "out", capsys=capsys)
    pinned = importers.SYSTEMS[system].origins[index].pinned
    assert code == 2 and err.count("\n") == 1 and f"at commit {head}, but the preset is pinned to {pinned}" in err
    moved, head = git_repo(tmp_path / "moved", fixture, edit)
    pin(monkeypatch, system, head, index)
    code, err = cli("import", system, moved, "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_the_import_command_names_every_system_it_imports(capsys):
    assert main(["prompts", "import", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for name in importers.SYSTEMS:
        assert name in shown
