"""Rule-based detectors of the CAMEL / MAST pathologies: loops, repetition, role flipping, flake
replies, drift off task, format failures. Each counts offending outputs in one trace."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hivethink.metrics.outcome import Metrics
from hivethink.metrics.text import containment, content_words, jaccard, ngrams, words
from hivethink.metrics.views import NON_AGENTS, agent_names, own_pieces, worker_outputs
from hivethink.tasks.base import Instance
from hivethink.trace import Event

LOOP_NGRAM = 3
LOOP_MIN_JACCARD = 0.8  # consecutive outputs sharing >= 80% of their trigrams repeat each other
REPEAT_NGRAM = 4
REPEAT_MIN_NGRAMS = 12  # only outputs with at least this many 4-grams are tested
REPEAT_MAX_DISTINCT = 0.5  # <= 50% distinct 4-grams = the output loops inside itself
FLAKE_MAX_WORDS = 30
DRIFT_MIN_WORDS = 5
DRIFT_MIN_OVERLAP = 0.1  # < 10% of an output's content words appear in the task prompt

# Workers whose job is to instruct: exempt from the role-flip rule (matched on name or role).
_DIRECTOR = re.compile(r"instruct|user|coordinator|leader|manager|planner|director", re.I)
# An instruction written by someone who should answer: a line opening with "Instruction:" (the
# CAMEL instructor format, also "Next instruction:") or a sentence "Your (next) task is ...".
_INSTRUCTION = re.compile(
    r"^[\W_]*(?:next\s+)?instruction\s*:|(?:^|[.!?]\s+)your\s+(?:next\s+)?task\s+is\b", re.I | re.M
)
# A promise opener: "I will", "I'll", "I am going to", "Let me", ... optionally after "Sure,".
_PROMISE = re.compile(
    r"^(?:(?:sure|ok(?:ay)?|alright|great)\W+)?"
    r"(?:i\s+will|i'll|i\s+am\s+going\s+to|i'm\s+going\s+to|i\s+shall|let\s+me|i\s+can\s+do\s+that)\b",
    re.I,
)
# Signs of substance in a short reply: digits, a colon introducing content, math, code.
_SUBSTANCE = re.compile(r"\d|:|\\boxed|```|=")


def is_loop(previous: str, current: str) -> bool:
    """Two consecutive outputs repeat each other: the same words (case and punctuation ignored),
    or word-trigram Jaccard similarity >= 0.8."""
    a, b = words(previous), words(current)
    if a and a == b:
        return True
    sim = jaccard(ngrams(a, LOOP_NGRAM), ngrams(b, LOOP_NGRAM))
    return sim is not None and sim >= LOOP_MIN_JACCARD


def is_repetitive(text: str) -> bool:
    """An output that loops inside itself: at least 12 word 4-grams, at most half of them distinct."""
    toks = words(text)
    total = len(toks) - REPEAT_NGRAM + 1
    return (
        total >= REPEAT_MIN_NGRAMS
        and len(ngrams(toks, REPEAT_NGRAM)) / total <= REPEAT_MAX_DISTINCT
    )


def is_instruction(text: str) -> bool:
    """The text gives an instruction (a line starting "Instruction:", or "Your task is ...")."""
    return bool(_INSTRUCTION.search(text))


def is_flake(text: str) -> bool:
    """A flake reply: at most 30 words, opens with a promise ("I will ...", "Let me ..."), and has
    no substance (no digit, colon, equals sign, \\boxed or code fence) and at most one sentence."""
    stripped = text.strip()
    if not stripped or len(words(stripped)) > FLAKE_MAX_WORDS or not _PROMISE.match(stripped):
        return False
    sentences = [s for s in re.split(r"[.!?]+(?:\s+|$)", stripped) if s.strip()]
    return len(sentences) <= 1 and not _SUBSTANCE.search(stripped)


def task_overlap(text: str, prompt: str) -> float | None:
    """Fraction of an output's content words that occur in ``prompt`` (None: no content words)."""
    return containment(content_words(text), content_words(prompt))


def is_drift(text: str, prompt: str) -> bool:
    """Off task: at least 5 content words and fewer than 10% of them occur in ``prompt`` (the task
    as the worker was told it)."""
    overlap = task_overlap(text, prompt)
    return (
        len(content_words(text)) >= DRIFT_MIN_WORDS
        and overlap is not None
        and overlap < DRIFT_MIN_OVERLAP
    )


def directors(events: Sequence[Event]) -> set[str]:
    """Workers entitled to instruct: name or any declared role matches instructor/user/coordinator/..."""
    out = {e.worker for e in events if _DIRECTOR.search(e.worker)}
    out |= {e.worker for e in events if e.kind == "role" and _DIRECTOR.search(e.text)}
    return out - NON_AGENTS


def task_as_told(events: Sequence[Event], instance: Instance) -> dict[str, str]:
    """Per agent, the task as it was told: the instance prompt, the agent's first ``prompt``
    event (its instructions, before any partner spoke) and prompts shown to everyone."""
    shared = [e.text for e in events if e.kind == "prompt" and e.worker in NON_AGENTS]
    first: dict[str, str] = {}
    for e in events:
        if e.kind == "prompt" and e.worker not in NON_AGENTS:
            first.setdefault(e.worker, e.text)
    return {w: "\n".join([instance.prompt, *shared, first.get(w, "")]) for w in agent_names(events)}


def pathology_metrics(events: Sequence[Event], instance: Instance | None = None) -> Metrics:
    """Counts of each pathology over all agents' outputs (see the ``is_*`` rules above).

    ``patho_loops``: consecutive near-duplicate outputs of one worker; ``patho_repetition``:
    outputs looping inside themselves; ``patho_role_flips``: outputs of non-director workers that
    instruct; ``patho_flakes``: flake replies; ``patho_drift``: off-task outputs, judged against
    :func:`task_as_told` (needs the instance, else None); ``patho_format_failures``: ``error``
    events of the agents; ``backend_errors``: ``error`` events of failed backend calls
    (``data["backend"]``), which are not the agents' fault. ``task_overlap``: mean overlap of
    the outputs with the task as told. Text the engine forced into a step (its header, the
    redundancy check) is cut out of the outputs first.
    """
    cut = own_pieces(events)
    outputs = {
        w: [" ".join(cut([t])).strip() for t in ts] for w, ts in worker_outputs(events).items()
    }
    bosses = directors(events)
    texts = [t for ts in outputs.values() for t in ts]
    metrics: Metrics = {
        "outputs": len(texts),
        "patho_loops": sum(
            is_loop(a, b) for ts in outputs.values() for a, b in zip(ts, ts[1:], strict=False)
        ),
        "patho_repetition": sum(is_repetitive(t) for t in texts),
        "patho_role_flips": sum(
            is_instruction(t) for w, ts in outputs.items() if w not in bosses for t in ts
        ),
        "patho_flakes": sum(is_flake(t) for t in texts),
        "patho_drift": None,
        "patho_format_failures": sum(
            1 for e in events if e.kind == "error" and not e.data.get("backend")
        ),
        "backend_errors": sum(1 for e in events if e.kind == "error" and e.data.get("backend")),
        "task_overlap": None,
    }
    if instance is not None:
        told = task_as_told(events, instance)
        metrics["patho_drift"] = sum(is_drift(t, told[w]) for w, ts in outputs.items() for t in ts)
        overlaps = [
            o
            for w, ts in outputs.items()
            for t in ts
            if (o := task_overlap(t, told[w])) is not None
        ]
        metrics["task_overlap"] = sum(overlaps) / len(overlaps) if overlaps else None
    return metrics
