"""Coordination metrics: redundancy, division of labour, references, redundancy checks and
pivots, agreement (and agreed-but-wrong), declared roles and abstentions."""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import combinations

from hivethink.metrics.outcome import Metrics
from hivethink.metrics.text import containment, normalize, text_ngrams
from hivethink.metrics.views import (
    NON_AGENTS,
    agent_names,
    final_answers,
    own_pieces,
    worker_outputs,
)
from hivethink.names import references as count_references
from hivethink.tasks.base import Instance, Task, is_judged
from hivethink.trace import Event

REDUNDANCY_NGRAM = 4  # word n-gram size for redundancy on free text
PIVOT_NGRAM = 2  # word n-gram size for the pivot test
PIVOT_MAX_OVERLAP = 0.2  # a step whose bigrams are < 20% old is a pivot


def work_units(
    events: Sequence[Event], task: Task | None = None, instance: Instance | None = None
) -> tuple[str, dict[str, set[Hashable]]]:
    """The distinct units of work each agent produced, and what a unit is.

    ``("items", ...)`` when the task can list items in a text (``task.items(text)``, or
    ``task.items(text, instance)`` when it takes the instance; the ``enumerate`` task): each
    agent's normalised items. Otherwise ``("ngram", ...)``: each agent's distinct word 4-grams.
    Units that occur in the task prompt are left out (restating the task is not work), and text
    the engine forced into the streams (step headers, the redundancy check) is cut out first.
    """
    outputs = worker_outputs(events)
    items = getattr(task, "items", None)
    if callable(items):
        takes_instance = instance is not None and len(inspect.signature(items).parameters) >= 2

        def listed(text: str) -> set[Hashable]:
            found = items(text, instance) if takes_instance else items(text)
            units: set[Hashable] = {normalize(str(it)) for it in found}
            return units - {""}

        prompt_items = listed(instance.prompt) if instance is not None else set()
        return "items", {
            w: set().union(*(listed(t) for t in texts)) - prompt_items
            for w, texts in outputs.items()
        }
    cut = own_pieces(events)
    prompt = text_ngrams([instance.prompt], REDUNDANCY_NGRAM) if instance is not None else set()
    return "ngram", {
        w: set(text_ngrams(cut(texts), REDUNDANCY_NGRAM) - prompt) for w, texts in outputs.items()
    }


def redundancy(units: dict[str, set[Hashable]]) -> float | None:
    """Fraction of distinct units (over all agents) produced by more than one agent.

    0 = perfect split, 1 = everybody did the same work. None with fewer than 2 agents or no units.
    """
    if len(units) < 2:
        return None
    counts = Counter(u for s in units.values() for u in s)
    if not counts:
        return None
    return sum(1 for c in counts.values() if c > 1) / len(counts)


def division_of_labour(units: dict[str, set[Hashable]]) -> float | None:
    """Normalised entropy (0..1) of who produced the distinct units.

    Each distinct unit gives one credit, split equally among the agents that produced it; the
    entropy of the agents' credit shares is divided by log(number of agents). 1 = the work is
    spread evenly, 0 = one agent did everything. None with fewer than 2 agents or no units.
    """
    if len(units) < 2:
        return None
    counts = Counter(u for s in units.values() for u in s)
    if not counts:
        return None
    credit = {w: sum(1 / counts[u] for u in s) for w, s in units.items()}
    total = sum(credit.values())
    h = -sum(c / total * math.log(c / total) for c in credit.values() if c > 0)
    return h / math.log(len(units))


def references(events: Sequence[Event]) -> dict[str, int]:
    """Per agent, how many times its own text (forced headers and checks cut out) names another
    agent, by whole names only: ``names.references``, the one count the engine uses too."""
    outputs = worker_outputs(events)
    names = list(outputs)
    own = own_pieces(events)
    return {w: sum(count_references(t, w, names) for t in own(texts)) for w, texts in outputs.items()}


def check_pivots(events: Sequence[Event]) -> list[tuple[str, str, bool | None]]:
    """For each redundancy ``check`` event: (worker, answer, pivoted).

    ``answer`` is ``data["answer"]`` lower-cased ("yes"/"no"/"?"). ``pivoted`` says whether the
    worker's next ``step`` after the check changed course: fewer than ``PIVOT_MAX_OVERLAP`` of
    its word bigrams occur in that worker's earlier steps. None when undecidable (no earlier
    step, no later step, or a later step too short to have a bigram).
    """
    cut = own_pieces(events)
    out: list[tuple[str, str, bool | None]] = []
    for i, ev in enumerate(events):
        if ev.kind != "check":
            continue
        answer = str(ev.data.get("answer", "?")).strip().lower() or "?"
        before = [e.text for e in events[:i] if e.kind == "step" and e.worker == ev.worker]
        after = next(
            (e.text for e in events[i + 1 :] if e.kind == "step" and e.worker == ev.worker), None
        )
        pivoted: bool | None = None
        if before and after is not None:
            new = text_ngrams(cut([after]), PIVOT_NGRAM)
            share = containment(new, text_ngrams(cut(before), PIVOT_NGRAM))
            pivoted = None if share is None else share < PIVOT_MAX_OVERLAP
        out.append((ev.worker, answer, pivoted))
    return out


def _rate(flags: list[bool | None]) -> float | None:
    decided = [f for f in flags if f is not None]
    return sum(decided) / len(decided) if decided else None


def check_metrics(events: Sequence[Event]) -> Metrics:
    """Counts of redundancy checks by answer, and how often a pivot followed "yes" (and "no")."""
    checks = check_pivots(events)
    yes = [p for _, a, p in checks if a == "yes"]
    no = [p for _, a, p in checks if a == "no"]
    return {
        "checks": len(checks),
        "checks_yes": len(yes),
        "checks_no": len(no),
        "pivots_after_yes": sum(1 for p in yes if p),
        "pivot_rate_after_yes": _rate(yes),
        "pivot_rate_after_no": _rate(no),
    }


def agreement_metrics(
    events: Sequence[Event], task: Task | None = None, instance: Instance | None = None
) -> Metrics:
    """Agreement among the agents' final ``answer`` events.

    ``agreement``: 1 when at least two agents answered and all final answers are equal after
    normalisation (case, whitespace, trailing full stop) and none is blank. ``pairwise_agreement``:
    fraction of answering pairs that agree. ``agreed_but_wrong`` / ``agreed_and_correct``: agreement
    and the agreed answer scores below 1 / exactly 1 (needs task and instance, else None).
    """
    answers = final_answers(events)
    norm = [normalize(a) if a else None for a in answers.values()]
    pairs = list(combinations(norm, 2))
    metrics: Metrics = {
        "agents_answered": sum(1 for a in norm if a),
        "agreement": None,
        "pairwise_agreement": None,
        "agreed_but_wrong": None,
        "agreed_and_correct": None,
    }
    if not pairs:
        return metrics
    agreed = all(a is not None and a == norm[0] for a in norm)
    metrics["agreement"] = 1.0 if agreed else 0.0
    metrics["pairwise_agreement"] = sum(1 for a, b in pairs if a is not None and a == b) / len(
        pairs
    )
    if task is not None and instance is not None and not is_judged(task):
        correct = agreed and float(task.score(instance, next(iter(answers.values())))) >= 1.0
        metrics["agreed_and_correct"] = 1.0 if correct else 0.0
        metrics["agreed_but_wrong"] = 1.0 if agreed and not correct else 0.0
    return metrics


def role_metrics(events: Sequence[Event]) -> Metrics:
    """Declared roles (``role`` events), distinct role texts, and abstentions (``data["abstain"]``)."""
    roles = [e for e in events if e.kind == "role" and e.worker not in NON_AGENTS]
    abstain = [e for e in roles if e.data.get("abstain")]
    declared = {normalize(e.text) for e in roles if not e.data.get("abstain") and e.text.strip()}
    return {
        "roles_declared": len(roles) - len(abstain),
        "distinct_roles": len(declared),
        "abstentions": len(abstain),
    }


def coordination_metrics(
    events: Sequence[Event], task: Task | None = None, instance: Instance | None = None
) -> Metrics:
    """All coordination metrics of one trace (see the functions above for each definition)."""
    kind, units = work_units(events, task, instance)
    refs = references(events)
    agents = agent_names(events)
    return {
        "agents": len(agents),
        "redundancy": redundancy(units),
        "redundancy_unit": kind,
        "division_of_labour": division_of_labour(units),
        "references": sum(refs.values()),
        "references_per_agent": sum(refs.values()) / len(refs) if refs else None,
        **check_metrics(events),
        **agreement_metrics(events, task, instance),
        **role_metrics(events),
    }
