"""The hive: N workers decoding in lockstep over one shared KV cache, as Hogwild! Inference does.

A hive is one job of the engine (:class:`HiveJob`): N rows plus its per-pass policy. The rules,
and by default the rules of the pinned reference (eqimp/hogwild_llm at 1a87a99, ``generation.py``
and ``formatting.py``; protocols.md §1):

- **Prompt.** The collaboration instruction (rules, worked examples, ways to work together) and
  the problem form the *user* turn; the model's chat template adds the generation prompt (for
  reasoning models it opens the thinking block; option ``think: vocab`` forces it). Without the
  worked examples the published builder also leaves out the ways to work together (option
  ``suggestions``). Written into the common block once; the header
  blocks (the others' section title, the ``<...>`` markers, the own section title) are each
  prefilled as their own block from position 0.
- **Views** (combined layout): ``[common, others-header, the others' unfinished steps in worker
  order each followed by a marker, own-header (marker included), own unfinished step]``.
- **Visibility** (default ``instant``): a worker sees the others' tokens of the same pass.
- **First steps** are seeded: the first worker greets and begins to propose a split; the others
  greet.
- **Steps.** A step ends when a sampled token holds the separator (a blank line) and the step text
  before the last separator ends with one of 16 end-of-sentence characters (``step_end: fenced``
  adds the open-block rule of the later branch ``inference_lib``). The finished step (without that token: it was not fed
  yet) moves to the end of the common block (the engine does the move before the next pass,
  leaving the worker's block empty); the token and the next step's header are fed together in
  the next pass, into that block.
- **Redundancy check.** The fed tokens of all workers (forced ones included) are counted; when a
  worker starts a new step and more than ``check_every`` (256) were fed since the last check, its
  header carries the check question, and the count restarts.
- **Sampling:** every logits processor the model's generation config implies (transformers'
  own list), over the ids fed in the pass; a draw per worker from its own seeded generator.
- **Suppressed tokens:** ``#``, BOS, EOS and end-of-thinking. hivethink can add a guard against
  step headers written inside a step (``guard_headers``, off by default); any that slip through
  are counted as impersonations.
- **Stop:** at the first finished step holding an answer, or when the budget of passes is spent.
  An answer is a box only: by default (``extract: float``) the rightmost ``\\boxed{}`` whose
  content parses as a number, as the reference reads it.
- **Answer:** one combined transcript (history, then every worker's unfinished step followed by a
  marker) is searched for the answer (rightmost); if it has none, the finisher text is appended
  and up to 16 greedy tokens are decoded once for the team.
- **Snapshots:** the state after each budget in ``snapshots`` is kept, and each gets its own
  answer (finisher included): one run gives the accuracy-vs-budget curve.

Every text shown to the model comes from the ``hogwild`` prompt book (``--prompts DIR``).

The package, one part per module: ``config`` (:class:`HiveConfig`, the one configuration of the
CLI, the server and the ``shared-cache`` substrate), ``prompt`` (the book and the prompt),
``layouts`` (one class per layout: views and transcripts), ``policy`` (the per-pass rules),
``finisher``, ``results`` (the record and :class:`HiveResult`) and ``job`` (:class:`HiveJob`,
which puts them together as one job of the engine, and :class:`Hive`).
"""

from __future__ import annotations

from hivethink.engine.hive.config import MAX_WORKERS, HiveConfig
from hivethink.engine.hive.job import Hive, HiveJob, TokenCallback
from hivethink.engine.hive.layouts import LAYOUTS, Layout
from hivethink.engine.hive.policy import Guard, Vocab
from hivethink.engine.hive.prompt import HOGWILD
from hivethink.engine.hive.results import HiveResult
from hivethink.engine.text import chat_ids

__all__ = ["HOGWILD", "LAYOUTS", "MAX_WORKERS", "Guard", "Hive", "HiveConfig", "HiveJob", "HiveResult", "Layout",
           "TokenCallback", "Vocab", "chat_ids"]
