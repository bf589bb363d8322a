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


def test_by_default_a_step_ends_inside_an_open_block_as_at_1a87a99(tiny_smol):
    """The pinned code has no open-block rule (``step_end: reference-code``, the default)."""
    from hivethink.engine.text import step_ends

    assert HiveConfig().step_end == "reference-code"
    assert step_ends("$$ x = 1.\n\n") and step_ends("```\nx = 1.\n\n")
    job = run(tiny_smol, cfg(max_steps=16),
              {"Alice": "$$ x = 1.\n\nNext"})
    assert [e for e in job.result.events if e.kind == "step" and e.worker == "Alice"]
    fenced = run(tiny_smol, cfg(max_steps=16, step_end="fenced"), {"Alice": "$$ x = 1.\n\nNext"})
    assert not [e for e in fenced.result.events if e.kind == "step" and e.worker == "Alice"]


def test_the_fenced_variant_is_the_open_block_rule_of_branch_inference_lib():
    """An odd count of ```, ~~~ or $$ (``str.count``) in the whole decoded step, separator token
    included, keeps the step open; nothing else does (no ``\\[`` rule)."""
    from hivethink.engine.text import BLOCK_BORDERS, step_ends

    assert BLOCK_BORDERS == ("```", "~~~", "$$")
    for text in ("$$ x = 1.\n\n", "```\nx = 1.\n\n", "~~~\nx = 1.\n\n", "x = 1.\n\n$$",
                 "$$a$$ and $$ b.\n\n", "````\nx.\n\n"):  # four backticks count once
        assert not step_ends(text, fenced=True), text
    for text in ("$$ x $$ so x = 1.\n\n", "```\nx\n```\ndone.\n\n", "\\[ x = 1.\n\n",
                 "~~~~~~ x.\n\n", "a $$$$ b.\n\n"):
        assert step_ends(text, fenced=True), text
    assert not step_ends("$$ x $$ so x = 1,\n\n", fenced=True)  # the end-of-sentence rule still holds


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
    """The reference's set: '#', the tokenizer's BOS and EOS, '</think>'; the guard is an option."""
    vocab = Vocab.of(tiny_smol)
    names = worker_names(3)
    plain = Guard(vocab, tiny_smol, names, False, torch.device("cpu"))
    tok = tiny_smol.tokenizer
    for t in ("#", tok.bos_token, tok.eos_token):
        assert plain.base[vocab.id_of(t)], t
    assert plain.mask("**") is plain.base  # the reference suppresses nothing else
    assert plain.suppressed == sorted({vocab.id_of("#"), tok.bos_token_id, tok.eos_token_id})
    assert int(plain.base.sum()) == len(plain.suppressed)
    guard = Guard(vocab, tiny_smol, names, True, torch.device("cpu"))
    bob, bracket = vocab.id_of("Bob"), tok.encode(" [", add_special_tokens=False)[0]
    assert guard.mask("x **")[bob] and not guard.mask("x ")[bob]
    assert guard.mask("well, Bob")[bracket] and not guard.mask("Bobby")[bracket]
    assert guard.base[vocab.id_of("#")]
    # a guarded run: every worker samples under the masks; a header slipped in is counted
    job = run(tiny_smol, cfg(guard_headers=False), {"Alice": "Fine.\n\nBob [2]:** I take over."})
    assert job.result.impersonations == {"Alice": 1, "Bob": 0}
    assert any(e.kind == "error" and e.data.get("reason") == "impersonation" for e in job.result.events)
    guarded = run(tiny_smol, cfg(guard_headers=True), {"Alice": "Fine. **"})
    after_stars = [m["Alice"] for m in guarded.masks if m["Alice"][bob]]
    assert after_stars  # once Alice's text ended with "**", "Bob" was not allowed


def test_the_header_guard_is_off_in_solve_and_the_shared_cache_preset(tiny_smol):
    from hivethink.substrates.shared_cache import SharedCache

    assert HiveConfig().guard_headers is False and SharedCache().guard_headers is False
    bob = Vocab.of(tiny_smol).id_of("Bob")
    job = run(tiny_smol, cfg(max_steps=6),
              {"Alice": "Fine. **"})
    assert not job.guard.headers and not any(m["Alice"][bob] for m in job.masks)


def test_the_run_stops_at_the_first_finished_step_holding_an_answer(tiny_smol):
    job = run(tiny_smol, cfg(max_steps=40), {"Bob": "So the total is \\boxed{7}.\n\n", "Alice": "Counting..."})
    r = job.result
    assert r.answer == "7" and r.finished_by == "answer" and r.answers["Bob"] == "7"
    assert r.steps < 40 and r.steps == len(job.tokens("So the total is \\boxed{7}.\n\n"))


def test_an_answer_is_a_box_whose_content_parses_as_a_number_by_default(tiny_smol):
    """``extract: float`` (the reference's ``extract_result=float``): a box that does not parse
    does not end the run; ``extract: task`` reads any box with the task's extractor."""
    from hivethink.engine.text import boxed_float

    assert HiveConfig().extract == "float"
    assert boxed_float("\\boxed{3} then \\boxed{x+1}") == "3" and boxed_float("\\boxed{ 2.5 }") == "2.5"
    assert boxed_float("\\boxed{answer here}") is None and boxed_float("\\boxed{\\frac{1}{2}}") is None
    assert boxed_float("\\boxed{7") is None and boxed_float("\\boxed{1e3}") == "1e3"
    scripts = {"Bob": "It is \\boxed{x+1}.\n\nSo \\boxed{7}.\n\n", "Alice": "Counting..."}
    job = run(tiny_smol, cfg(max_steps=40), scripts)
    steps = [e for e in job.result.events if e.kind == "step" and e.worker == "Bob"]
    assert len(steps) == 2 and job.result.answer == "7" and job.result.finished_by == "answer"
    task = run(tiny_smol, cfg(max_steps=40, extract="task"), scripts)
    assert task.result.answer == "x+1" and len([e for e in task.result.events if e.kind == "step"]) == 1


def test_the_transcript_search_looks_for_the_answer_format_never_any_text(tiny_smol):
    """A task extractor that falls back to the whole text (``enumerate``'s) must not turn the
    combined transcript, view headers and all, into the team's answer."""
    def whole_text(text: str) -> str | None:
        from hivethink.answers import boxed

        return boxed(text) or text.strip() or None

    for extract in ("float", "task"):
        job = run(tiny_smol, cfg(max_steps=10, finisher_tokens=0, extract=extract),
                  {"Alice": "Thinking hard", "Bob": "Me too"}, extractor=whole_text)
        assert job.result.answer is None and job.result.finished_by == "finisher", extract
    boxed_job = run(tiny_smol, cfg(max_steps=12, extract="task"), {"Alice": "I have \\boxed{a, b} so"},
                    extractor=whole_text)
    assert boxed_job.result.answer == "a, b" and boxed_job.result.finished_by == "transcript"


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
    assert c.sampling == "model" and not c.generation_config(tiny_smol).do_sample  # no generation config: greedy
    tiny_smol.generation = GenerationConfig(do_sample=True, temperature=0.6, top_p=0.95, top_k=20)
    try:
        g = c.generation_config(tiny_smol)
        assert (g.do_sample, g.temperature, g.top_p, g.top_k) == (True, 0.6, 0.95, 20)
        assert HiveConfig(top_p=0.5).generation_config(tiny_smol).top_p == 0.5
        assert not HiveConfig(sampling="greedy").generation_config(tiny_smol).do_sample
        t = HiveConfig(temperature=1.0).generation_config(tiny_smol)
        assert (t.do_sample, t.temperature, t.top_k, t.top_p) == (True, 1.0, 0, 1.0)
    finally:
        tiny_smol.generation = None


def test_every_processor_the_generation_config_implies_in_transformers_order():
    """The hive's processors are transformers' own list for the config, as ``generate`` builds it
    for a model (the reference's ``get_logits_processor``): the same processors, in the same
    order, with transformers' defaults (top-k 50 where a sampling config names none), and the
    suppressed tokens in the place transformers gives the caller's processors."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, LogitsProcessorList
    from transformers.generation.logits_process import SuppressTokensLogitsProcessor

    from hivethink.engine.sampling import ConfigProcessors

    V = 64
    model = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                         num_attention_heads=1, num_key_value_heads=1))
    configs = [GenerationConfig(do_sample=True, temperature=0.6, top_p=0.9, repetition_penalty=1.3, min_p=0.05,
                                no_repeat_ngram_size=2),
               GenerationConfig(do_sample=False, repetition_penalty=1.5),
               GenerationConfig(do_sample=True, temperature=0.7, suppress_tokens=[3, 4])]
    for gen in configs:
        model.generation_config = gen
        prepared, kwargs = model._prepare_generation_config(model.generation_config)
        model._prepare_special_tokens(prepared)
        theirs = model._get_logits_processor(
            generation_config=prepared, input_ids_seq_length=0, encoder_input_ids=None, prefix_allowed_tokens_fn=None,
            logits_processor=LogitsProcessorList([SuppressTokensLogitsProcessor([5, 6], device="cpu")]),
            device="cpu", model_kwargs=kwargs)
        ours = ConfigProcessors(gen, [5, 6], V, "cpu")
        assert [type(p) for p in ours.processors if type(p).__name__ != "_RowMask"] == [type(p) for p in theirs]
        assert ours.do_sample == gen.do_sample
        torch.manual_seed(0)
        ids, scores = torch.randint(0, V, (3, 4)), torch.randn(3, V)
        assert torch.equal(ours.processors(ids, scores.clone(), banned=None), theirs(ids, scores.clone()))
    assert "TopK(top_k=50)" in ConfigProcessors(GenerationConfig(do_sample=True), [], V, "cpu").describe()


def test_the_repetition_penalty_covers_the_ids_fed_in_the_pass_left_padded(tiny_smol):
    """The reference applies the processors to the tokens fed in that pass, left-padded with the
    pad token: a worker's just-sampled token (and the pad, where another worker fed more) is
    penalized, nothing earlier."""
    from transformers import GenerationConfig

    from hivethink.engine.hive.policy import StepPolicy
    from hivethink.engine.sampling import ConfigProcessors, new_generator

    vocab = Vocab.of(tiny_smol)
    guard = Guard(vocab, tiny_smol, worker_names(2), False, torch.device("cpu"))
    procs = ConfigProcessors(GenerationConfig(do_sample=False, repetition_penalty=2.0), guard.suppressed,
                             vocab.size, "cpu")
    policy = StepPolicy(HiveConfig(), vocab, pad_id=107)
    logits = torch.zeros(2, vocab.size)
    logits[:, 105], logits[:, 106], logits[:, 107] = 2.0, 1.5, 2.5
    gens = [new_generator(0), new_generator(1)]
    # Alice fed one token (105), Bob two (108, 109): Alice's row is [pad, 105]
    assert policy.choose(procs, guard, logits, [[105], [108, 109]], ["", ""], gens) == [106, 107]
    assert policy.choose(procs, guard, logits, [[108], [109]], ["", ""], gens) == [107, 107]


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
               {"extract": "int"}, {"suggestions": "never"},
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


def test_think_comes_only_from_the_chat_template_unless_forced(tiny_smol):
    """The reference never adds ``<think>``: the chat template's generation prompt opens the
    thinking block where it does (QwQ's), nowhere else (``think: template``, the default);
    ``think: vocab`` forces it where the vocabulary has the token and the template did not."""
    import copy

    from tests.conftest import tiny_with_tokenizer

    assert HiveConfig().think == "template"
    tok = copy.deepcopy(tiny_smol.tokenizer)
    tok.add_tokens(["<think>", "</think>"], special_tokens=False)
    model = tiny_with_tokenizer(tok, vocab=len(tok))
    default = HiveJob(model, HiveConfig(workers=2, examples=False), PROBLEM)
    assert tok.decode(default.prompt).endswith("<|im_start|>assistant\n")  # SmolLM2's template does not open it
    forced = HiveJob(model, HiveConfig(workers=2, examples=False, think="vocab"), PROBLEM)
    assert tok.decode(forced.prompt).endswith("<|im_start|>assistant\n<think>\n")
    assert default.prompt == forced.prompt[: len(default.prompt)]
    plain = HiveJob(tiny_smol, HiveConfig(workers=2, examples=False, think="vocab"), PROBLEM)
    assert "<think>" not in tiny_smol.tokenizer.decode(plain.prompt[-5:])  # no such token: nothing forced
    # and the end of thinking is never sampled
    guard = Guard.of(Vocab.of(model), model, default.names, False, torch.device("cpu"))
    assert guard.base[tok.convert_tokens_to_ids("</think>")]


def test_without_examples_the_instruction_drops_the_suggestions_as_published(tiny_smol):
    """The authors' builder: one conditional covers the ways to work together and their examples,
    so without examples both go and two separators remain between the rules and the task
    (``suggestions: with-examples``, the default); ``always`` keeps the suggestions."""
    assert HiveConfig().suggestions == "with-examples"
    job = HiveJob(tiny_smol, HiveConfig(workers=2, examples=False), PROBLEM)
    names = dict(a="Alice", b="Bob", **job.text.titles())
    rules = HOGWILD.render("rules", count=2, workers="Alice and Bob", **names).strip("\n")
    task = HOGWILD.render("task", workers="Alice and Bob").strip("\n")
    collaboration = HOGWILD.render("collaboration", a="Alice", b="Bob").strip("\n")
    assert job.text.instruction(False) == rules + "\n\n\n\n" + task
    assert job.text.instruction(False, "always") == rules + "\n\n" + collaboration + "\n\n" + task
    assert collaboration not in job.decode(job.prompt)
    assert collaboration in HiveJob(tiny_smol, HiveConfig(workers=2), PROBLEM).text.instruction(True)


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
