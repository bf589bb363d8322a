"""The hive's policy, rule by rule (protocols.md §1): runs scripted token by token over a tiny
random model that speaks through the embedded model's tokenizer, so each rule is checked on real
text and fails if the rule is broken. Views are checked pass by pass against the trace."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from hivethink.engine.hive import HOGWILD, LAYOUTS, Guard, Hive, HiveConfig, HiveJob, Vocab
from hivethink.engine.hive.config import LayoutName
from hivethink.engine.scheduler import Engine
from hivethink.errors import HivethinkError
from hivethink.names import worker_names

PROBLEM = "Tom has 3 apples and buys 4 more. How many apples does he have?"


class Scripted(HiveJob):
    """A hive whose workers write given texts (then "ok" forever) instead of sampling; it keeps
    the banned-token masks each worker would have sampled under."""

    def __init__(self, model, cfg: HiveConfig, scripts: dict[str, str], **kw):
        super().__init__(model, cfg, PROBLEM, **kw)
        self.script = {n: self.tokens(t) for n, t in scripts.items()}
        self.filler = self.encode(" ok")[0]
        self.masks: list[dict[str, torch.Tensor]] = []

    def tokens(self, text: str) -> list[int]:
        """Token ids of ``text`` with each blank line as the one separator token, as a model
        writes it (encoding text whole may split it in two newlines)."""
        [sep] = self.encode("\n\n")
        parts = text.split("\n\n")
        out: list[int] = []
        for i, part in enumerate(parts):
            out += self.encode(part) if part else []
            out += [sep] if i < len(parts) - 1 else []
        return out

    def choose(self, logits, live):
        self.masks.append({self.names[w]: self.guard.mask(self.workers[w].tail) for w in live})
        out = []
        for w in live:
            left = self.script.get(self.names[w], [])
            out.append(left.pop(0) if left else self.filler)
        return out


def run(model, cfg: HiveConfig, scripts: dict[str, str] | None = None, *, spy=None, **kw) -> Scripted:
    job = Scripted(model, cfg, scripts or {}, **kw)
    engine = Engine(model)
    if spy is not None:
        real = engine.runner.forward

        def recording(rows, tokens, **kwargs):
            if job.phase == "decode":
                spy.append([[t for b in r.view for t in b.tokens] for r in rows])
            return real(rows, tokens, **kwargs)

        engine.runner.forward = recording  # type: ignore[method-assign]
    engine.run_jobs([job])
    assert job.result is not None, job.error
    return job


def cfg(**kw) -> HiveConfig:
    base = dict(workers=2, max_steps=24, examples=False, check_every=0, sampling="greedy")
    return HiveConfig(**{**base, **kw})


def test_first_steps_are_seeded_the_lead_proposes_a_split_and_the_others_greet(tiny_smol):
    job = run(tiny_smol, cfg(workers=3, max_steps=2))
    first = {n: "".join(e.text for e in job.result.events if e.kind == "token" and e.worker == n and e.step == 0)
             for n in job.names}
    assert first["Alice"] == "**Alice [1]:** " + HOGWILD.render("first_step_lead", name="Alice")
    for n in ("Bob", "Carol"):
        assert first[n] == f"**{n} [1]:** " + HOGWILD.render("first_step_other", name=n)
    assert all(e.data.get("forced") for e in job.result.events if e.kind == "token" and e.step == 0)


@pytest.mark.parametrize("workers", [2, 3])
def test_combined_views_pass_by_pass_match_the_trace(tiny_smol, workers):
    """Rebuilt from the trace alone: common = prompt + the finished steps in the order they
    moved; then the others' section title, each other worker's current step in worker order
    separated by markers, the own section title (marker included), the own current step."""
    scripts = {"Alice": "One step done.\n\nAnd a second one!\n\nThird?\n\n",
               "Bob": "Short.\n\nLonger step here.\n\n",
               "Carol": "I agree.\n\n"}
    views: list[list[list[int]]] = []
    job = run(tiny_smol, cfg(workers=workers, max_steps=30), scripts, spy=views)
    t = {k: job.encode(v) for k, v in {
        "others": "\n\n" + HOGWILD.render("others_title") + "\n\n",
        "own": HOGWILD.render("marker") + "\n\n" + HOGWILD.render("own_title") + "\n\n",
        "marker": HOGWILD.render("marker") + "\n\n"}.items()}
    events = job.result.events
    names = job.names
    common = list(job.prompt)
    block = {n: [] for n in names}
    moves = [e for e in events if e.kind == "step"]
    assert len(views) == job.result.steps == 30
    for p, seen in enumerate(views):
        for e in moves:  # steps whose ending token was sampled in the pass before move now
            if e.step == p - 1:
                common += block[e.worker]
                block[e.worker] = []
        for w, n in enumerate(names):
            others = [o for o in names if o != n]
            want = common + t["others"]
            for i, o in enumerate(others):
                want += block[o] + (t["marker"] if i < len(others) - 1 else [])
            want += t["own"] + block[n]
            assert seen[w] == want, (p, n)
        for e in events:
            if e.kind == "token" and e.step == p:
                block[e.worker].append(e.token_id)
    assert len(moves) >= 3


def test_a_step_ends_at_a_separator_after_end_of_sentence_and_the_next_header_comes_in_the_same_pass(tiny_smol):
    views: list[list[list[int]]] = []
    job = run(tiny_smol, cfg(max_steps=16), {"Alice": "Two plus two is four.\n\nNext"}, spy=views)
    ev = job.result.events
    [step] = [e for e in ev if e.kind == "step" and e.worker == "Alice"]
    assert step.text.startswith("**Alice [1]:** ") and step.text.endswith("four.\n\n")
    p = step.step  # the pass whose sampled token ended the step
    fed = [e for e in ev if e.kind == "token" and e.worker == "Alice" and e.step == p + 1]
    assert job.decode([e.token_id for e in fed]) == "\n\n**Alice [2]:** "  # ending token + header, one pass
    assert [e.data.get("forced", False) for e in fed] == [False] + [True] * (len(fed) - 1)
    # before that pass the step, without its ending token, was already in the common history:
    # the others' section (which starts with a blank line) follows it directly
    seen = job.decode(views[p + 1][0][len(job.prompt):])
    assert seen.startswith("**Alice [1]:**") and "four.\n\n" + HOGWILD.render("others_title") in seen
    # no end of sentence before the blank line: no step end
    job = run(tiny_smol, cfg(max_steps=12), {"Alice": "a list:\n\nitems"})
    assert not [e for e in job.result.events if e.kind == "step" and e.worker == "Alice"]


def test_a_hive_only_declares_what_it_needs_asking_changes_nothing(tiny_smol):
    """The engine may ask a job for its next pass and defer it: asking twice gives the same rows
    and moves, and the run is the run of a hive asked once."""
    class AskedTwice(Scripted):
        def intent(self):
            a, b = super().intent(), super().intent()
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert [(r.view, r.tokens) for r in a.rows] == [(r.view, r.tokens) for r in b.rows]
                assert a.moves == b.moves
            return b

    scripts = {"Alice": "One step done.\n\nAnd a second one!\n\n", "Bob": "Short.\n\n"}
    once = run(tiny_smol, cfg(max_steps=20), scripts)
    twice = AskedTwice(tiny_smol, cfg(max_steps=20), scripts)
    Engine(tiny_smol).run_jobs([twice])
    assert twice.result is not None and twice.result.texts == once.result.texts
    assert [e.kind for e in twice.result.events] == [e.kind for e in once.result.events]


def test_the_end_of_sentence_characters_are_the_published_sixteen(tiny_smol):
    from hivethink.engine.text import END_OF_STEP_CHARS, step_ends

    assert len(END_OF_STEP_CHARS) == 16 and {".", "?", "!", "。", "…", "‽", "❧"} <= set(END_OF_STEP_CHARS)
    assert step_ends("**A [1]:** done。\n\n") and not step_ends("**A [1]:** done,\n\n")
    assert not step_ends("$$ x = 1.\n\n") and step_ends("$$ x = 1.\n\n", fenced=False)
    assert not step_ends("```\nx = 1.\n\n") and step_ends("\\[ x \\] so x = 1.\n\n")


def test_the_redundancy_check_follows_the_count_of_fed_tokens(tiny_smol):
    """The count covers every worker's fed tokens (forced ones too); the first worker to start a
    step once it is above the threshold gets the question in its header, and the count restarts."""
    every = 30
    scripts = {n: "Done. " * 2 + ".\n\n" + "More words here.\n\n" * 6 for n in ("Alice", "Bob")}
    job = run(tiny_smol, cfg(max_steps=60, check_every=every), scripts)
    check = HOGWILD.render("check")
    feeds = {}
    for e in job.result.events:
        if e.kind == "token":
            feeds.setdefault(e.step, {}).setdefault(e.worker, []).append(e)
    count, expected, got = 0, [], []
    for p in sorted(feeds)[1:]:  # the seeded first steps are not counted
        for n in job.names:
            fed = feeds[p].get(n, [])
            text = job.decode([e.token_id for e in fed])
            if any(e.data.get("forced") for e in fed):  # a new step's header
                due = count > every
                expected.append((p, n, due))
                got.append((p, n, check in text))
                if due:
                    count = 0
            count += len(fed)
    assert expected == got and any(d for *_, d in expected) and not all(d for *_, d in expected)
    assert job.result.checks == sum(d for *_, d in expected)
    off = run(tiny_smol, cfg(max_steps=60, check_every=0), scripts)
    assert off.result.checks == 0 and not any(check in t for t in off.result.texts.values())


def test_suppressed_tokens_and_the_header_guard(tiny_smol):
    vocab = Vocab.of(tiny_smol)
    names = worker_names(3)
    plain = Guard(vocab, tiny_smol, names, False, torch.device("cpu"))
    tok = tiny_smol.tokenizer
    for t in ("#", tok.bos_token, tok.eos_token):
        assert plain.base[vocab.id_of(t)], t
    assert plain.mask("**") is plain.base  # the reference suppresses nothing else
    guard = Guard(vocab, tiny_smol, names, True, torch.device("cpu"))
    bob, bracket = vocab.id_of("Bob"), tok.encode(" [", add_special_tokens=False)[0]
    assert guard.mask("x **")[bob] and not guard.mask("x ")[bob]
    assert guard.mask("well, Bob")[bracket] and not guard.mask("Bobby")[bracket]
    assert guard.base[vocab.id_of("#")]
    # a guarded run: every worker samples under the masks; a header slipped in is counted
    job = run(tiny_smol, cfg(guard_headers=False), {"Alice": "Fine.\n\nBob [2]:** I take over."})
    assert job.result.impersonations == {"Alice": 1, "Bob": 0}
    assert any(e.kind == "error" and e.data.get("reason") == "impersonation" for e in job.result.events)
    guarded = run(tiny_smol, cfg(), {"Alice": "Fine. **"})
    after_stars = [m["Alice"] for m in guarded.masks if m["Alice"][bob]]
    assert after_stars  # once Alice's text ended with "**", "Bob" was not allowed


def test_the_run_stops_at_the_first_finished_step_holding_an_answer(tiny_smol):
    job = run(tiny_smol, cfg(max_steps=40), {"Bob": "So the total is \\boxed{7}.\n\n", "Alice": "Counting..."})
    r = job.result
    assert r.answer == "7" and r.finished_by == "answer" and r.answers["Bob"] == "7"
    assert r.steps < 40 and r.steps == len(job.tokens("So the total is \\boxed{7}.\n\n"))


def test_when_the_budget_ends_a_boxed_unfinished_step_is_the_answer(tiny_smol):
    job = run(tiny_smol, cfg(max_steps=12), {"Alice": "I think it is \\boxed{5} but"})
    assert job.result.answer == "5" and job.result.finished_by == "transcript"
    assert not job.finisher.jobs  # no finisher was needed


def test_otherwise_the_finisher_answers_from_the_combined_transcript(tiny_smol):
    job = run(tiny_smol, cfg(max_steps=10, finisher_tokens=3), {"Alice": "Thinking hard", "Bob": "Me too"})
    r = job.result
    assert r.finished_by == "finisher"
    [fin] = job.finisher.jobs
    text = tiny_smol.tokenizer.decode(fin.prompt)
    # the reference's compiled response: prompt, history, the others' title, every unfinished step
    # followed by a marker, then the finisher
    marker = HOGWILD.render("marker")
    assert text.startswith(tiny_smol.tokenizer.decode(job.prompt))
    assert HOGWILD.render("others_title") in text and text.count(marker) >= 2
    assert "Thinking hard" in text and "Me too" in text
    assert text.endswith(HOGWILD.render("finisher")) and len(fin.tokens) <= 3
    assert any(e.kind == "step" and e.data.get("finisher") for e in r.events)


def test_snapshots_from_one_run_equal_separate_runs(tiny_smol):
    """One decode to the largest budget gives each budget's answer (finisher included) as a run
    with that budget would (greedy, same seed)."""
    both = Hive(tiny_smol, cfg(max_steps=16, snapshots=(8,), finisher_tokens=4)).solve(PROBLEM)
    for b in (8, 16):
        alone = Hive(tiny_smol, cfg(max_steps=b, finisher_tokens=4)).solve(PROBLEM)
        snap = both.at_budget[b]
        assert (snap.answer, snap.finished_by, snap.steps, snap.tokens, snap.texts) == (
            alone.answer, alone.finished_by, alone.steps, alone.tokens, alone.texts), b
    assert both.at_budget[16].answer == both.answer


def test_sampling_follows_the_models_generation_config_unless_set(tiny_smol):
    from transformers import GenerationConfig

    c = HiveConfig()
    assert c.sampling_params(tiny_smol).greedy  # no generation config: greedy
    tiny_smol.generation = GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95, top_k=20)
    try:
        p = c.sampling_params(tiny_smol)
        assert (p.temperature, p.top_p, p.top_k) == (0.6, 0.95, 20)
        assert HiveConfig(sampling="greedy").sampling_params(tiny_smol).greedy
        assert HiveConfig(temperature=1.0).sampling_params(tiny_smol).temperature == 1.0
    finally:
        tiny_smol.generation = None


def test_sampling_is_seeded_per_worker(tiny_smol):
    kw = dict(workers=2, layout="independent", max_steps=12, temperature=1.0, top_p=0.9, examples=False)
    a = Hive(tiny_smol, HiveConfig(seed=1, **kw)).solve(PROBLEM)
    b = Hive(tiny_smol, HiveConfig(seed=1, **kw)).solve(PROBLEM)
    c = Hive(tiny_smol, HiveConfig(seed=2, **kw)).solve(PROBLEM)
    assert a.texts == b.texts and a.texts != c.texts
    assert a.texts["Alice"].split("**Alice:** ")[1] != a.texts["Bob"].split("**Bob:** ")[1]


@pytest.mark.parametrize("layout", ["interleaved", "contiguous", "independent"])
def test_other_layouts_run_and_answer(tiny_smol, layout):
    job = run(tiny_smol, cfg(layout=layout, max_steps=30, workers=3),
              {"Bob": "It is \\boxed{7}.\n\n", "Alice": "Hm.\n\n"})
    r = job.result
    if layout == "independent":  # each worker stops on its own answer; the team votes
        assert r.answers["Bob"] == "7" and r.answer == "7"
    else:
        assert r.answer == "7" and r.finished_by == "answer"


def test_sixteen_workers_and_the_live_callback(tiny_smol):
    seen: dict[str, str] = {}

    def on_token(name: str, piece: str) -> None:
        seen[name] = seen.get(name, "") + piece

    res = Hive(tiny_smol, cfg(workers=16, max_steps=5, finisher_tokens=2), on_token=on_token).solve(PROBLEM)
    assert len(res.tokens) == 16 and all(n == 5 for n in res.tokens.values())
    for name, text in res.texts.items():
        assert seen[name].startswith(f"**{name} [1]:** ")
        # token-by-token pieces may space differently from decoding the whole stream
        assert " ".join(seen[name].split()).startswith(" ".join(text.split()))


def test_each_layout_the_config_names_is_one_class():
    from typing import get_args

    assert set(LAYOUTS) == set(get_args(LayoutName))
    assert {n for n, c in LAYOUTS.items() if c.stepped} == {"combined", "interleaved"}
    assert {n for n, c in LAYOUTS.items() if c.votes} == {"independent"}


def test_bad_configs_are_one_line_errors():
    for kw in ({"workers": 0}, {"workers": 17}, {"layout": "ring"}, {"max_steps": 0}, {"top_p": 0.0},
               {"visibility": "eventual"}, {"step_end": "never"}, {"sampling": "creative"}, {"think": "always"},
               {"snapshots": (8, 4)}, {"snapshots": (0,)}, {"snapshots": (600,)}, {"check_every": -1},
               {"temperature": float("nan")}, {"colour": "red"}):
        with pytest.raises(ValidationError):
            HiveConfig(**kw)
        with pytest.raises(HivethinkError) as e:
            HiveConfig.parse(kw)
        assert len(str(e.value).splitlines()) == 1 and str(e.value).startswith("hive config: ")
    with pytest.raises(ValidationError):
        HiveConfig(workers="2")  # strict, as the server's requests: a string is not a number
    # text from a grid or the command line is read loosely
    assert HiveConfig.parse({"workers": "3", "temperature": "0.5", "check_every": "0"}) == HiveConfig(
        workers=3, temperature=0.5, check_every=0)


def test_the_hive_prompt_is_the_instruction_and_problem_as_the_user_turn(tiny_smol):
    job = HiveJob(tiny_smol, HiveConfig(workers=3), PROBLEM)
    text = tiny_smol.tokenizer.decode(job.prompt)
    assert "<|im_start|>user" in text and text.rstrip().endswith("<|im_start|>assistant")
    user = text.split("<|im_start|>user\n", 1)[1]
    assert user.index("Alice, Bob and Carol") < user.index(PROBLEM)
    assert "<example>" in user  # worked examples, as published; --no-examples drops them
    short = HiveJob(tiny_smol, HiveConfig(workers=3, examples=False), PROBLEM)
    assert "<example>" not in short.decode(short.prompt) and len(short.prompt) < len(job.prompt)
    solo = HiveJob(tiny_smol, HiveConfig(workers=1), PROBLEM)
    assert "collaborat" not in solo.decode(solo.prompt).lower()


def test_a_reasoning_model_starts_inside_its_thinking_block(tiny_smol):
    """For a model with a thinking token the generation prefix opens the thinking block (QwQ's
    template does it itself; where a template does not, the hive adds it)."""
    import copy

    from tests.conftest import tiny_with_tokenizer

    tok = copy.deepcopy(tiny_smol.tokenizer)
    tok.add_tokens(["<think>", "</think>"], special_tokens=False)
    model = tiny_with_tokenizer(tok, vocab=len(tok))
    job = HiveJob(model, HiveConfig(workers=2, examples=False), PROBLEM)
    assert tok.decode(job.prompt).endswith("<|im_start|>assistant\n<think>\n")
    # think: template opens it only where the chat template does (SmolLM2's does not)
    only_template = HiveJob(model, HiveConfig(workers=2, examples=False, think="template"), PROBLEM)
    assert tok.decode(only_template.prompt).endswith("<|im_start|>assistant\n")
    assert only_template.prompt == job.prompt[: len(only_template.prompt)]
    plain = HiveJob(tiny_smol, HiveConfig(workers=2, examples=False), PROBLEM)
    assert "<think>" not in tiny_smol.tokenizer.decode(plain.prompt[-5:])
    # and the end of thinking is never sampled
    guard = Guard.of(Vocab.of(model), model, job.names, False, torch.device("cpu"))
    assert guard.base[tok.convert_tokens_to_ids("</think>")]


def test_the_engine_and_the_metrics_count_references_alike(tiny_smol):
    from hivethink.metrics.coordination import references as metric_references

    job = run(tiny_smol, cfg(workers=3, max_steps=40),
              {"Alice": "Bob, please check. Everyone agrees.\n\nCarol too!\n\n", "Bob": "Alice is right.\n\n"})
    assert job.result.references["Alice"] == 2 and job.result.references["Bob"] == 1
    assert metric_references(job.result.events) == job.result.references


def test_a_blank_line_in_two_tokens_ends_a_step_only_in_the_text_variant(tiny_smol):
    """The reference ends a step only on a token holding the whole blank line; small models often
    write it as two newline tokens, which ``step_end: text`` accepts too."""
    class TwoNewlines(Scripted):
        def tokens(self, text):
            [nl] = self.encode("\n")
            return [t for part in text.split("\n") for t in (self.encode(part) if part else []) + [nl]][:-1]

    for rule, ends in (("fenced", False), ("reference-code", False), ("text", True)):
        job = TwoNewlines(tiny_smol, cfg(max_steps=12, step_end=rule), {"Alice": "It is done.\n\nNext"})
        Engine(tiny_smol).run_jobs([job])
        steps = [e for e in job.result.events if e.kind == "step" and e.worker == "Alice"]
        assert bool(steps) == ends, rule
