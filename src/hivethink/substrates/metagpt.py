"""``metagpt``: MetaGPT's SOP pipeline (Hong et al., arXiv 2308.00352), by the code at the tags
``v0.1.0`` (07b4001) and ``v0.8.1`` (c036574) of FoundationAgents/MetaGPT.

Fixed roles, each with its actions, its document schema and its subscriptions (``_watch``),
around one message pool. Every round every role observes, and acts only when a message of a
kind it watches (by the action that caused it; in v0.8.1 also one addressed to it) arrived that
it has not handled; otherwise it waits. Messages published in a round are seen from the next
round on, so the pipeline runs one stage per round: the published runs did so because each
role's (async) API call yielded before the next role observed; a client that answers at once
would let all roles act in round 1 of the published code. hivethink reproduces the published
runs. A run ends at the round cap (``n_round``) or when the token budget is spent, checked
at the start of each round (v0.1.0: spent above the budget; v0.8.1: at or above it); there is
no stop when every role is idle (idle rounds change nothing: they are skipped, not counted).

**v0.1.0**: product manager Alice (WritePRD; watches the boss's requirement), architect Bob
(WriteDesign; watches WritePRD), project manager Eve (WriteTasks; watches WriteDesign),
engineer Alex (WriteCode; watches WriteTasks). Each action is shown its role's prefix as the
system message and its template filled with the printout of the messages it watches
(``[Role: text, ...]``, the raw replies); the engineer's code action has an empty system
message and is shown its whole memory (every pool message, then the files it already wrote),
one call per file of the task list, in order; it publishes only "all done." (code never enters
the pool). Documents are ``##`` sections parsed into typed fields (:mod:`.metagpt_docs`); a
failed parse is retried once with identical messages, and a second failure aborts the run, as
do the published file-saving steps' stricter parsers (``save_checks``: the architect's save
needs a fenced package name in its design and a fenced quadrant chart in the PRD; the engineer
reads its task list from a fenced ``[...]`` and saves only a reply with a code block).
Sampling: temperature 0.3, ``max_tokens`` 1500; ``n_round`` 5 (the startup script's default).

**v0.8.1**: the product manager first prepares the documents (no model call; one round), then
writes the PRD from the requirement document; the architect designs from the PRD, the project
manager writes the task list from the design (each shown only that document, the previous
one's JSON); documents are the ActionNode template (context, format example, nodes,
constraint) answered as JSON between ``[CONTENT]`` tags, up to 6 attempts. The engineer writes
each file of the task list (shown the design, the task list, the other files' code and, when a
test ran, its error log), reviewed when ``code_review`` (the CLI's default; up to 2 review and
rewrite passes per file, LGTM ends them), then summarises the code in the next round and sends
the summary to the QA engineer Edward (``feedback: on``), who writes a unittest file per code
file, runs it in the sandbox (:mod:`hivethink.sandbox`, 10 s, output cut to 500 and 10 000
characters), has the run summed up and sends the result to whoever its "Send To" line names:
NoOne ends the loop, QaEngineer makes it debug (rewrite) its test file, Engineer sends it to
the engineer, whose v0.8.1 code has no rule for it (received, ignored; ``feedback_to: engineer``
makes it rewrite its files with the test log, as the paper describes). The QA engineer's every
turn counts a test round; past 5 it stops. Sampling: temperature 0, ``max_tokens`` 4096;
``n_round`` 5 (the CLI's default) without feedback, 20 with it (ours: at 5 rounds the QA
engineer never gets a turn).

**Options**: ``version``, ``feedback`` (on/off: hire the QA engineer), ``feedback_to``,
``code_review``, ``save_checks``, ``n_round``, ``max_tokens``, ``temperature`` (0/None: the
version's), and ``artifacts: chat``, the ablation the paper never ran: the same roles, order and
triggers, but each role writes a free-form message and is shown the whole conversation so far
instead of typed documents (no parsing, no retries; the engineer writes one file; the QA loop
is unchanged). On ``math`` tasks the roles become an analyst, a planner, a solver and a
checker that evaluates the solver's computation in the sandbox and sends a mismatch back (at
most 5 checks): hivethink's adaptation, labelled so in ``info["adaptation"]``.

The team answer on a code task is the code of the first written file that defines the
problem's entry point, else all files joined; on a math task, the last solution's answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hivethink import prompts
from hivethink.backends.base import Backend
from hivethink.errors import HivethinkError
from hivethink.sandbox import Limits, run_python
from hivethink.substrates.base import Budget, SampleResult
from hivethink.substrates.common import Call, Recorder, SubstrateBase, conversation
from hivethink.substrates.metagpt_docs import (
    ANALYSIS,
    DESIGN_010,
    DESIGN_081,
    PLAN,
    PRD_010,
    PRD_081,
    SOLUTION,
    TASKS_010,
    TASKS_081,
    UNITTEST_OK,
    ParseError,
    Schema,
    first_code_block,
    parse_sections,
    parse_tagged_json,
    recipient,
    section,
    section_code_list,
    section_code_str,
)
from hivethink.tasks.base import Instance, Task

VERSIONS = ("v0.1.0", "v0.8.1")
ARTIFACTS = ("documents", "chat")
FEEDBACK_TO = ("published", "engineer")
ALL, NOBODY = "<all>", "<none>"
ADAPTATION = "metagpt math adaptation (analyst, planner, solver, checker): hivethink's, not published"
DEFAULTS = {"v0.1.0": {"temperature": 0.3, "max_tokens": 1500}, "v0.8.1": {"temperature": 0.0, "max_tokens": 4096}}
QA_ROUNDS = 5  # QaEngineer.test_round_allowed (v0.8.1); also the math checker's checks
RUN_TIMEOUT_S = 10.0  # RunCode.run_script's timeout
FAKE_ROOT = "/data"  # WriteTest shows the model paths under this root

B010 = prompts.book("metagpt-0.1.0", {
    "prefix": ["name", "profile", "goal", "constraints"],
    **{f"{r}_{k}": [] for r in ("pm", "architect", "pjm", "engineer") for k in ("goal", "constraints")},
    "prd_search": ["results", "summary"], "prd": ["requirements", "search_information", "format_example"],
    "prd_example": [], "design": ["context", "format_example"], "design_example": [],
    "tasks": ["context", "format_example"], "tasks_example": [], "code": ["context", "filename"],
})  # fmt: skip
B081 = prompts.book("metagpt-0.8.1", {
    "prefix": ["name", "profile", "goal"], "constraint": ["constraints"],
    **{f"{r}_{k}": [] for r in ("pm", "architect", "pjm", "engineer", "qa") for k in ("goal", "constraints")},
    "node_prompt": ["context", "example", "instruction", "constraint"], "node_constraint": [],
    "prd_context": ["project_name", "requirements"], "prd_nodes": [], "prd_example": [],
    "design_nodes": [], "design_example": [], "tasks_nodes": [], "tasks_example": [],
    "code": ["design", "task", "code", "logs", "summary_log", "feedback", "filename"],
    "code_file": ["filename", "code"], "review": ["context", "filename", "code"],
    "review_instruction": ["format_example"], "review_example": ["filename"], "rewrite": ["filename"],
    "summarize": ["system_design", "task", "code_blocks"], "code_block": ["code"], "is_pass": ["context"],
    "write_test": ["code_to_test", "test_file_name", "source_file_path", "workspace"],
    "run_code": ["context"],
    "run_code_context": ["code_file_name", "code", "test_file_name", "test_code", "command", "outs", "errs"],
    "debug": ["code", "test_code", "logs"],
})  # fmt: skip
BCHAT = prompts.book("metagpt-chat", {
    **{r: ["conversation"] for r in ("pm", "architect", "pjm", "engineer", "analyst", "planner", "solver")},
    "engineer_logs": ["logs"],
})  # fmt: skip
BMATH = prompts.book("metagpt-math", {
    **{f"{r}_{k}": [] for r in ("analyst", "planner", "solver") for k in ("goal", "constraints")},
    "analysis": ["context", "format_example"], "analysis_example": [], "plan": ["context", "format_example"],
    "plan_example": [], "solve": ["context", "format_example"], "solve_example": [],
    "feedback": ["report"], "report_mismatch": ["computation", "value", "answer"],
    "report_error": ["computation", "error"],
})  # fmt: skip


class Abort(Exception):
    """What ends a published run early: a parse that failed its last attempt, a save that raised."""


@dataclass(eq=False)
class Msg:
    """A pool message. ``role`` is the sender's profile (its printout is ``role: content``),
    ``cause_by`` the action that made it, ``send_to`` names (or ALL / NOBODY)."""

    content: str
    role: str
    cause_by: str
    sender: str = ""
    send_to: frozenset[str] = frozenset({ALL})
    fields: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"{self.role}: {self.content}"


def printout(messages: list[Msg]) -> str:
    """A list of messages as v0.1.0 formats one into a template: ``[Role: text, Role: text]``."""
    return "[" + ", ".join(repr(m) for m in messages) + "]"


Gen = Generator[list[Call], list[str], list[Msg]]


@dataclass(eq=False)
class Role:
    name: str
    profile: str
    system: str  # the role's prefix
    watch: frozenset[str]
    act: Callable[[Role, list[Msg], int], Gen]
    memory: list[Msg] = field(default_factory=list)
    buffer: list[Msg] = field(default_factory=list)  # v0.8.1: messages routed to the role
    ignore_memory: bool = False  # v0.8.1 product manager and QA engineer
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Metagpt(SubstrateBase):
    """See the module docstring. ``temperature``/``max_tokens``/``n_round``: 0 or None means the
    version's (and, for ``n_round``, the feedback setting's) published default."""

    name = "metagpt"
    prompt_books: ClassVar[tuple[str, ...]] = ("metagpt-0.1.0", "metagpt-0.8.1", "metagpt-chat", "metagpt-math")
    temperature: float | None = None  # type: ignore[assignment]
    version: str = "v0.8.1"
    feedback: bool = True
    feedback_to: str = "published"
    artifacts: str = "documents"
    code_review: bool = True
    save_checks: bool = True
    n_round: int = 0
    max_tokens: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.temperature, str):
            self.temperature = float(self.temperature)
        for name, allowed in (("version", VERSIONS), ("artifacts", ARTIFACTS), ("feedback_to", FEEDBACK_TO)):
            if getattr(self, name) not in allowed:
                raise HivethinkError(f"metagpt: {name} must be one of {', '.join(allowed)}, "
                                     f"not {getattr(self, name)!r}")
        if self.n_round < 0 or self.max_tokens < 0:
            raise HivethinkError("metagpt: n_round and max_tokens must be 0 (the default) or more")

    def accepts(self, task: Task) -> bool:
        """The software pipeline runs on code tasks, the adaptation on math tasks."""
        if getattr(task, "name", None) == "code":
            if self.version == "v0.1.0" and self.feedback:
                raise HivethinkError("metagpt: version v0.1.0 has no QA engineer; set feedback: off "
                                     "(or version: v0.8.1)")
            return True
        return getattr(task, "name", None) == "math"

    def run(self, instance: Instance, task: Task, backend: Backend, *, workers: int, budget: Budget,
            seed: int) -> SampleResult:
        math = getattr(task, "name", None) == "math"
        if not math and self.version == "v0.1.0" and self.feedback:
            raise HivethinkError("metagpt: version v0.1.0 has no QA engineer; set feedback: off")
        return _Run(self, instance, task, backend, budget, seed, math).run()


class _Run:
    """One sample: the roles, the pool, the files, the rounds."""

    def __init__(self, cfg: Metagpt, instance: Instance, task: Task, backend: Backend, budget: Budget,
                 seed: int, math: bool) -> None:
        self.cfg, self.instance, self.task, self.math = cfg, instance, task, math
        self.v010 = cfg.version == "v0.1.0"
        self.chat = cfg.artifacts == "chat"
        defaults = DEFAULTS[cfg.version]
        self.temperature = defaults["temperature"] if cfg.temperature is None else cfg.temperature
        self.max_tokens = int(cfg.max_tokens or defaults["max_tokens"])
        if cfg.n_round:
            self.n_round = cfg.n_round
        elif math:
            self.n_round = 3 + 2 * QA_ROUNDS if cfg.feedback else 5
        else:
            self.n_round = 20 if cfg.feedback else 5
        self.rec = Recorder(backend, budget, seed=seed, temperature=self.temperature, probe=instance.probe)
        self.budget = budget
        self.pool: list[Msg] = []  # every message published, in order
        self.files: dict[str, str] = {}  # the engineer's code files
        self.tests: dict[str, str] = {}  # the QA engineer's test files
        self.outputs: dict[str, dict[str, str]] = {}  # test file -> {"stdout", "stderr"}
        self.docs: dict[str, str] = {}  # v0.8.1 document contents (JSON) by kind
        self.acted: list[list[Any]] = []
        self.round = 0
        self.roles = self._math_roles() if math else self._roles_010() if self.v010 else self._roles_081()

    # -- the environment --------------------------------------------------------------------
    def run(self) -> SampleResult:
        boss = "BOSS" if self.v010 or self.math else "Human"
        requirement = str(self.instance.data.get("question") or self.instance.prompt)
        self.publish(Msg(requirement, boss, "UserRequirement", sender=boss))
        stop, used, idle_from = "n_round", 0, None
        try:
            for r in range(self.n_round):
                self.round = r
                if self.over_budget():
                    stop = "budget"
                    break
                acting = []
                for role in self.roles:
                    news = self.observe(role)
                    if news:
                        acting.append((role, role.act(role, news, r)))
                if not acting:
                    if not any(role.buffer for role in self.roles):
                        idle_from = r  # nothing can change any more: the rest are idle rounds
                        break
                    continue
                used = r + 1
                for msg in self.drive(acting, r):
                    self.publish(msg)
        except Abort as err:
            stop = "aborted"
            self.rec.event("error", "team", str(err), step=self.round, data={"reason": "aborted"})
        answer = self.answer()
        info: dict[str, Any] = {
            "version": self.cfg.version, "artifacts": self.cfg.artifacts, "feedback": self.cfg.feedback,
            "rounds": used, "n_round": self.n_round, "stop_reason": stop, "acted": self.acted,
            "files": list(self.files),
        }  # fmt: skip
        if idle_from is not None:
            info["idle_from"] = idle_from
        if self.math:
            info["adaptation"] = ADAPTATION
        if not self.math and self.cfg.feedback:
            qa = next((r for r in self.roles if r.name == "Edward"), None)
            info["test_rounds"] = qa.state.get("test_round", 0) if qa else 0
        solver = "Alex"
        self.rec.answers({solver: answer}, step=self.round)
        return self.rec.finish(answer, agent_answers={solver: answer}, info=info)

    def over_budget(self) -> bool:
        b, rec = self.budget, self.rec
        spent = [(rec.tokens, b.tokens), (rec.sequential_passes, b.passes)]
        if self.v010:  # SoftwareCompany._check_balance: cost > budget
            return any(limit is not None and used > limit for used, limit in spent)
        return any(limit is not None and used >= limit for used, limit in spent)  # Team: cost >= budget

    def observe(self, role: Role) -> list[Msg]:
        """The news that make ``role`` act this round (see the module docstring)."""
        if self.v010 or self.math:  # Role._observe at v0.1.0: the pool, minus what it holds
            news = [m for m in self.pool if m.cause_by in role.watch and m not in role.memory]
            for m in self.pool:
                if m not in role.memory:
                    role.memory.append(m)
            return news
        arrived, role.buffer = role.buffer, []
        old = [] if role.ignore_memory else list(role.memory)
        for m in arrived:
            if m not in role.memory:
                role.memory.append(m)
        return [m for m in arrived if (m.cause_by in role.watch or role.name in m.send_to) and m not in old]

    def publish(self, msg: Msg) -> None:
        self.pool.append(msg)
        to = sorted(msg.send_to - {ALL, NOBODY})
        self.rec.event("message", msg.sender or msg.role, msg.content, step=self.round,
                       recipients=to or None,
                       data={"cause_by": msg.cause_by, "profile": msg.role,
                             "to": "all" if ALL in msg.send_to else "nobody" if not to else "some"})
        if self.v010 or self.math:
            return
        for role in self.roles:
            if ALL in msg.send_to or role.name in msg.send_to:
                role.buffer.append(msg)

    def drive(self, acting: list[tuple[Role, Gen]], r: int) -> list[Msg]:
        """Run the acting roles' actions side by side: their pending calls go out as one batch,
        until every action has returned its messages (published in role order)."""
        out: dict[str, list[Msg]] = {}
        pending: list[tuple[Role, Gen, list[Call]]] = []
        for role, gen in acting:
            self._step(role, gen, None, pending, out)
        while pending:
            calls = [c for _, _, cs in pending for c in cs]
            texts = self.rec.round(calls, step=r, max_tokens=self.max_tokens)
            at, current, pending = 0, pending, []
            for role, gen, cs in current:
                self._step(role, gen, texts[at : at + len(cs)], pending, out)
                at += len(cs)
        return [m for role, _ in acting for m in out.get(role.name, [])]

    @staticmethod
    def _step(role: Role, gen: Gen, texts: list[str] | None, pending: list[tuple[Role, Gen, list[Call]]],
              out: dict[str, list[Msg]]) -> None:
        try:
            calls = next(gen) if texts is None else gen.send(texts)
        except StopIteration as done:
            out[role.name] = list(done.value or [])
            return
        pending.append((role, gen, calls))

    # -- calls ------------------------------------------------------------------------------
    def ask(self, role: Role, messages: list[dict[str, str]], action: str, seen: list[str] | None = None,
            **data: Any) -> Generator[list[Call], list[str], str]:
        self.acted.append([self.round, role.name, action])
        [text] = yield [Call(role.name, messages, seen=seen, data={"action": action, **data})]
        return text

    def document(self, role: Role, messages: list[dict[str, str]], action: str, schema: Schema,
                 seen: list[str] | None = None) -> Generator[list[Call], list[str], tuple[str, dict[str, Any] | None]]:
        """A document call with its parse and retries (or one free-form call in chat mode)."""
        if self.chat:
            return (yield from self.ask(role, messages, action, seen)), None
        v010 = self.v010 or self.math
        attempts = 2 if v010 else 6  # tenacity stop_after_attempt in _aask_v1 / ActionNode._aask_v1
        for attempt in range(attempts):
            text = yield from self.ask(role, messages, action, seen, attempt=attempt)
            try:
                fields = parse_sections(text, schema) if v010 else parse_tagged_json(text, schema)
            except ParseError as err:
                self.rec.event("error", role.name, f"{action}: {err}", step=self.round,
                               data={"reason": "parse", "action": action, "attempt": attempt})
                continue
            return text, fields
        raise Abort(f"{role.name} ({action}): no parsable {schema.name} document after {attempts} attempts")

    def conversation(self) -> str:
        """The pool as a chat transcript (chat mode shows every role all of it)."""
        return "\n\n".join(f"{m.sender or m.role} ({m.role}): {m.content}" for m in self.pool
                           if ALL in m.send_to and m.cause_by != "PrepareDocuments") or "(nothing yet)"

    # -- v0.1.0 -------------------------------------------------------------------------------
    def _role(self, book: prompts.Book, key: str, name: str, profile: str, watch: set[str],
              act: Callable[[Role, list[Msg], int], Gen], **extra: Any) -> Role:
        goal, constraints = book.render(f"{key}_goal"), book.render(f"{key}_constraints")
        if book is B081:
            system = B081.render("prefix", name=name, profile=profile, goal=goal)
            if constraints:
                system += B081.render("constraint", constraints=constraints)
        else:
            system = B010.render("prefix", name=name, profile=profile, goal=goal, constraints=constraints)
        return Role(name, profile, system, frozenset(watch), act, **extra)

    def _roles_010(self) -> list[Role]:
        return [
            self._role(B010, "pm", "Alice", "Product Manager", {"UserRequirement"}, self.write_prd_010),
            self._role(B010, "architect", "Bob", "Architect", {"WritePRD"}, self.write_design_010),
            self._role(B010, "pjm", "Eve", "Project Manager", {"WriteDesign"}, self.write_tasks_010),
            self._role(B010, "engineer", "Alex", "Engineer", {"WriteTasks"}, self.write_code_010),
        ]

    def watched(self, role: Role) -> list[Msg]:
        """``important_memory``: the role's memory of the actions it watches."""
        return [m for m in role.memory if m.cause_by in role.watch]

    def write_prd_010(self, role: Role, news: list[Msg], r: int) -> Gen:
        shown = self.watched(role)
        if self.chat:
            user = BCHAT.render("pm", conversation=self.conversation())
        else:
            search = B010.render("prd_search", results="", summary="")  # no search engine key
            user = B010.render("prd", requirements=printout(shown), search_information=search,
                               format_example=B010.render("prd_example"))
        text, fields = yield from self.document(role, conversation(role.system, user), "WritePRD", PRD_010,
                                                seen=[m.role for m in shown])
        return [Msg(text, role.profile, "WritePRD", role.name, fields=fields)]

    def write_design_010(self, role: Role, news: list[Msg], r: int) -> Gen:
        shown = self.watched(role)
        user = (BCHAT.render("architect", conversation=self.conversation()) if self.chat else
                B010.render("design", context=printout(shown), format_example=B010.render("design_example")))
        text, fields = yield from self.document(role, conversation(role.system, user), "WriteDesign",
                                                DESIGN_010, seen=[m.role for m in shown])
        if not self.chat and self.cfg.save_checks:  # WriteDesign._save
            try:
                section_code_str(text, "Python package name")
                first_code_block(section(shown[-1].content, "Competitive Quadrant Chart"))
            except ParseError as err:
                raise Abort(f"Bob (WriteDesign): saving the documents failed ({err})") from None
        return [Msg(text, role.profile, "WriteDesign", role.name, fields=fields)]

    def write_tasks_010(self, role: Role, news: list[Msg], r: int) -> Gen:
        shown = self.watched(role)
        user = (BCHAT.render("pjm", conversation=self.conversation()) if self.chat else
                B010.render("tasks", context=printout(shown), format_example=B010.render("tasks_example")))
        text, fields = yield from self.document(role, conversation(role.system, user), "WriteTasks",
                                                TASKS_010, seen=[m.role for m in shown])
        return [Msg(text, role.profile, "WriteTasks", role.name, fields=fields)]

    def write_code_010(self, role: Role, news: list[Msg], r: int) -> Gen:
        if self.chat:
            user = BCHAT.render("engineer", conversation=self.conversation())
            text = yield from self.ask(role, conversation("", user), "WriteCode")
            self.save_code("main.py", text, strict=False)
            return [Msg("all done.", role.profile, "WriteCode", role.name)]
        try:  # Engineer.recv -> parse_tasks: the stricter task-list reading
            todos = [str(t) for t in section_code_list(news[-1].content, "Task list")]
        except ParseError as err:
            raise Abort(f"Alex: cannot read the task list ({err})") from None
        for filename in todos:
            history = printout(role.memory)  # the whole memory, its own code included
            user = B010.render("code", context=history, filename=filename)
            text = yield from self.ask(role, conversation("", user), "WriteCode",
                                       seen=sorted({m.role for m in role.memory}), filename=filename)
            role.memory.append(Msg(text, role.profile, "WriteCode", role.name))
            if self.cfg.save_checks and not any(x in filename for x in ("mp3", "wav")):  # WriteCode._save
                design = next(m for m in role.memory if m.cause_by == "WriteDesign")
                try:
                    section_code_str(design.content, "Python package name")
                except ParseError as err:
                    raise Abort(f"Alex (WriteCode): saving {filename} failed ({err})") from None
            self.save_code(filename, text, strict=self.cfg.save_checks)
        return [Msg("all done.", role.profile, "WriteCode", role.name)]

    def save_code(self, filename: str, reply: str, *, strict: bool) -> None:
        try:
            self.files[filename] = first_code_block(reply)
        except ParseError:
            if strict:
                raise Abort(f"Alex (WriteCode): saving {filename} failed (no code block)") from None
            self.files[filename] = reply

    # -- v0.8.1 -------------------------------------------------------------------------------
    def _roles_081(self) -> list[Role]:
        roles = [
            self._role(B081, "pm", "Alice", "Product Manager", {"UserRequirement", "PrepareDocuments"},
                       self.pm_081, ignore_memory=True),
            self._role(B081, "architect", "Bob", "Architect", {"WritePRD"}, self.write_design_081),
            self._role(B081, "pjm", "Eve", "Project Manager", {"WriteDesign"}, self.write_tasks_081),
            self._role(B081, "engineer", "Alex", "Engineer",
                       {"WriteTasks", "SummarizeCode", "WriteCode", "WriteCodeReview", "FixBug"}, self.engineer_081),
        ]
        if self.cfg.feedback:
            roles.append(self._role(B081, "qa", "Edward", "QaEngineer",
                                    {"SummarizeCode", "WriteTest", "RunCode", "DebugError"}, self.qa_081,
                                    ignore_memory=True))
        return roles

    def node(self, role: Role, context: str, action: str, schema: Schema, nodes: str, example: str,
             chat_key: str) -> Generator[list[Call], list[str], tuple[str, dict[str, Any] | None]]:
        """An ActionNode fill: the node template with the document's nodes and example."""
        if self.chat:
            user = BCHAT.render(chat_key, conversation=self.conversation())
        else:
            user = B081.render("node_prompt", context=context, example=B081.render(example),
                               instruction=B081.render(nodes), constraint=B081.render("node_constraint"))
        return (yield from self.document(role, conversation(role.system, user), action, schema))

    def pm_081(self, role: Role, news: list[Msg], r: int) -> Gen:
        if not role.state.get("prepared"):  # PrepareDocuments: the repository, no model call
            role.state["prepared"] = True
            self.docs["requirement"] = news[0].content
            self.acted.append([r, role.name, "PrepareDocuments"])
            return [Msg(news[0].content, role.profile, "PrepareDocuments", role.name)]
        context = B081.render("prd_context", project_name="", requirements=self.docs["requirement"])
        text, fields = yield from self.node(role, context, "WritePRD", PRD_081, "prd_nodes", "prd_example", "pm")
        self.docs["prd"] = json.dumps(fields, ensure_ascii=False) if fields is not None else text
        return [Msg(self.docs["prd"], role.profile, "WritePRD", role.name, fields=fields)]

    def write_design_081(self, role: Role, news: list[Msg], r: int) -> Gen:
        text, fields = yield from self.node(role, self.docs["prd"], "WriteDesign", DESIGN_081, "design_nodes",
                                            "design_example", "architect")
        self.docs["design"] = json.dumps(fields, ensure_ascii=False) if fields is not None else text
        return [Msg(self.docs["design"], role.profile, "WriteDesign", role.name, fields=fields)]

    def write_tasks_081(self, role: Role, news: list[Msg], r: int) -> Gen:
        text, fields = yield from self.node(role, self.docs["design"], "WriteTasks", TASKS_081, "tasks_nodes",
                                            "tasks_example", "pjm")
        self.docs["task"] = json.dumps(fields, ensure_ascii=False) if fields is not None else text
        role.state["tasks"] = fields
        return [Msg(self.docs["task"], role.profile, "WriteTasks", role.name, fields=fields)]

    def task_list(self) -> list[str]:
        if self.chat:
            return ["main.py"]
        fields = json.loads(self.docs["task"])
        return [str(f) for f in fields.get("Task list") or []]

    def engineer_081(self, role: Role, news: list[Msg], r: int) -> Gen:
        first = news[0]  # Engineer._think reads the first news only
        if first.cause_by in ("WriteTasks", "SummarizeCode") or (
            first.cause_by == "RunCode" and self.cfg.feedback_to == "engineer"
        ):
            changed = []
            for filename in self.task_list():
                code = yield from self.write_code_081(role, filename)
                if self.cfg.code_review:
                    code = yield from self.review_081(role, filename, code)
                self.files[filename] = code
                changed.append(filename)
            cause = "WriteCodeReview" if self.cfg.code_review else "WriteCode"
            return [Msg("\n".join(changed), role.profile, cause, role.name, send_to=frozenset({role.name}))]
        if first.cause_by in ("WriteCode", "WriteCodeReview") and first.sender == role.name:
            return (yield from self.summarize_081(role))
        self.acted.append([r, role.name, f"nothing ({first.cause_by} has no rule)"])
        return []

    def other_code(self, filename: str) -> str:
        """``WriteCode.get_codes``: the task list's other files written so far."""
        return "\n".join(B081.render("code_file", filename=f, code=self.files[f])
                         for f in self.task_list() if f != filename and f in self.files)

    def write_code_081(self, role: Role, filename: str) -> Generator[list[Call], list[str], str]:
        output = self.outputs.get(f"test_{filename}")
        logs = output["stderr"] if output else ""
        if self.chat:
            user = BCHAT.render("engineer", conversation=self.conversation())
            if logs:
                user += BCHAT.render("engineer_logs", logs=logs)
        else:
            user = B081.render("code", design=self.docs["design"], task=self.docs["task"],
                               code=self.other_code(filename), logs=logs,
                               summary_log=self.docs.get("code_summary", ""), feedback="", filename=filename)
        for attempt in range(6):  # WriteCode.write_code: retried while the reply has no code block
            text = yield from self.ask(role, conversation(role.system, user), "WriteCode", filename=filename,
                                       attempt=attempt)
            try:
                return first_code_block(text)
            except ParseError:
                self.rec.event("error", role.name, f"WriteCode {filename}: no code block", step=self.round,
                               data={"reason": "parse", "action": "WriteCode", "attempt": attempt})
        raise Abort(f"Alex (WriteCode): no code block for {filename} after 6 attempts")

    def review_081(self, role: Role, filename: str, code: str) -> Generator[list[Call], list[str], str]:
        """WriteCodeReview: up to 2 review passes; LGTM keeps the code, LBTM has it rewritten."""
        context = (self.conversation() if self.chat else "\n".join([
            "## System Design\n" + self.docs["design"] + "\n", "## Task\n" + self.docs["task"] + "\n",
            "## Code Files\n" + self.other_code(filename) + "\n"]))  # fmt: skip
        for _ in range(2):  # code_review_k_times
            head = B081.render("review", context=context, filename=filename, code=code)
            ask = head + B081.render("review_instruction",
                                     format_example=B081.render("review_example", filename=filename))
            for attempt in range(6):  # write_code_review_and_rewrite is retried on any error
                review = yield from self.ask(role, conversation(role.system, ask), "WriteCodeReview",
                                             filename=filename, attempt=attempt)
                try:
                    result = section(review, "Code Review Result")
                    if "LGTM" in result:
                        return code
                    rewrite = f"{head}\n{review}\n{B081.render('rewrite', filename=filename)}"
                    again = yield from self.ask(role, conversation(role.system, rewrite), "RewriteCode",
                                                filename=filename, attempt=attempt)
                    new = first_code_block(again)
                except ParseError as err:
                    self.rec.event("error", role.name, f"WriteCodeReview {filename}: {err}", step=self.round,
                                   data={"reason": "parse", "action": "WriteCodeReview", "attempt": attempt})
                    continue
                break
            else:
                raise Abort(f"Alex (WriteCodeReview): {filename} failed 6 attempts")
            if "LBTM" in result:
                code = new
        return code

    def summarize_081(self, role: Role) -> Gen:
        blocks = "\n".join(B081.render("code_block", code=self.files[f]) for f in self.files)
        design = self.conversation() if self.chat else self.docs["design"]
        task = "" if self.chat else self.docs["task"]
        user = B081.render("summarize", system_design=design, task=task, code_blocks=blocks)
        summary = yield from self.ask(role, conversation(role.system, user), "SummarizeCode")
        verdict = yield from self.ask(role, conversation(role.system, B081.render("is_pass", context=summary)),
                                      "IsPass")
        if "YES" not in verdict:  # kept where the next WriteCode shows it (its summary log)
            self.docs["code_summary"] = json.dumps({"codes_filenames": list(self.files), "reason": verdict})
        else:
            self.docs.pop("code_summary", None)
        # max_auto_summarize_code is 0: the summary goes to the QA engineer whatever it says
        return [Msg("", role.profile, "SummarizeCode", role.name, send_to=frozenset({"Edward"}))]

    def qa_081(self, role: Role, news: list[Msg], r: int) -> Gen:
        done = role.state.get("test_round", 0)
        if done > QA_ROUNDS:
            self.acted.append([r, role.name, "skip (test rounds exceeded)"])
            return [Msg(f"Exceeding {QA_ROUNDS} rounds of tests, skip", role.profile, "WriteTest", role.name,
                        send_to=frozenset({NOBODY}))]
        out: list[Msg] = []
        for msg in news:
            if msg.cause_by == "SummarizeCode":
                out += yield from self.write_tests_081(role)
            elif msg.cause_by in ("WriteTest", "DebugError"):
                out += yield from self.run_code_081(role, json.loads(msg.content))
            elif msg.cause_by == "RunCode":
                out += yield from self.debug_081(role, json.loads(msg.content))
        role.state["test_round"] = done + 1
        return [*out, Msg(f"Round {done + 1} of tests done", role.profile, "WriteTest", role.name,
                          send_to=frozenset({NOBODY}))]

    def write_tests_081(self, role: Role) -> Generator[list[Call], list[str], list[Msg]]:
        out = []
        for filename, code in self.files.items():
            if "test" in filename or not filename.endswith(".py"):
                continue
            test_name = f"test_{filename}"
            user = B081.render("write_test", code_to_test=code, test_file_name=test_name,
                               source_file_path=f"{FAKE_ROOT}/src/{filename}", workspace=FAKE_ROOT)
            text = yield from self.ask(role, conversation(role.system, user), "WriteTest", filename=test_name)
            try:
                self.tests[test_name] = first_code_block(text)
            except ParseError:  # WriteTest.write_code keeps the raw reply
                self.tests[test_name] = text
            context = {"code_filename": filename, "test_filename": test_name,
                       "command": ["python", f"tests/{test_name}"]}
            out.append(Msg(json.dumps(context), role.profile, "WriteTest", role.name,
                           send_to=frozenset({role.name})))
        return out

    def run_code_081(self, role: Role, context: dict[str, Any]) -> Generator[list[Call], list[str], list[Msg]]:
        code_name, test_name = context["code_filename"], context["test_filename"]
        code, test = self.files.get(code_name), self.tests.get(test_name)
        if code is None or test is None:
            return []
        files = {f"src/{name}": text for name, text in self.files.items()}
        run = run_python(test, files=files, path=["src"], filename=f"tests/{test_name}",
                         limits=Limits(wall_s=RUN_TIMEOUT_S, cpu_s=RUN_TIMEOUT_S))
        stderr = run.stderr if run.status in ("ok", "exit") else (run.stderr + (run.traceback or run.summary()))
        self.outputs[test_name] = {"stdout": run.stdout, "stderr": stderr}
        passed = run.ok or (run.status == "exit" and run.exit_code == 0)
        self.rec.event("message", role.name, run.summary(), step=self.round,
                       data={"sandbox": True, "test": test_name, "status": run.status, "passed": passed})
        shown = B081.render("run_code_context", code_file_name=code_name, code=code, test_file_name=test_name,
                            test_code=test, command=" ".join(context["command"]), outs=run.stdout[:500],
                            errs=stderr[:10000])
        summary = yield from self.ask(role, conversation(role.system, B081.render("run_code", context=shown)),
                                      "RunCode", filename=test_name)
        to = {"Engineer": "Alex", "QaEngineer": "Edward"}.get(recipient(summary), NOBODY)
        return [Msg(json.dumps(context), role.profile, "RunCode", role.name, send_to=frozenset({to}))]

    def debug_081(self, role: Role, context: dict[str, Any]) -> Generator[list[Call], list[str], list[Msg]]:
        test_name = context["test_filename"]
        output = self.outputs.get(test_name)
        code, test = self.files.get(context["code_filename"]), self.tests.get(test_name)
        if output is None or code is None or test is None:
            return []
        if UNITTEST_OK.search(output["stderr"]):  # DebugError returns "": the test file is emptied
            rewritten = ""
        else:
            user = B081.render("debug", code=code, test_code=test, logs=output["stderr"])
            reply = yield from self.ask(role, conversation(role.system, user), "DebugError", filename=test_name)
            try:
                rewritten = first_code_block(reply)
            except ParseError:
                raise Abort("Edward (DebugError): the reply has no code block") from None
        self.tests[test_name] = rewritten
        return [Msg(json.dumps(context), role.profile, "DebugError", role.name, send_to=frozenset({role.name}))]

    # -- the math adaptation ------------------------------------------------------------------
    def _math_roles(self) -> list[Role]:
        def role(key: str, name: str, profile: str, watch: set[str], act: Callable[[Role, list[Msg], int], Gen]) -> Role:
            goal, constraints = BMATH.render(f"{key}_goal"), BMATH.render(f"{key}_constraints")
            system = B010.render("prefix", name=name, profile=profile, goal=goal, constraints=constraints)
            return Role(name, profile, system, frozenset(watch), act)

        roles = [
            role("analyst", "Alice", "Analyst", {"UserRequirement"}, self.analyse),
            role("planner", "Bob", "Planner", {"Analyse"}, self.plan),
            role("solver", "Alex", "Solver", {"Plan", "CheckFailed"}, self.solve),
        ]
        if self.cfg.feedback:  # the checker makes no model call
            roles.append(Role("Edward", "Checker", "", frozenset({"Solve"}), self.check))
        return roles

    def analyse(self, role: Role, news: list[Msg], r: int) -> Gen:
        shown = self.watched(role)
        user = (BCHAT.render("analyst", conversation=self.conversation()) if self.chat else
                BMATH.render("analysis", context=printout(shown), format_example=BMATH.render("analysis_example")))
        text, fields = yield from self.document(role, conversation(role.system, user), "Analyse", ANALYSIS)
        return [Msg(text, role.profile, "Analyse", role.name, fields=fields)]

    def plan(self, role: Role, news: list[Msg], r: int) -> Gen:
        shown = self.watched(role)
        user = (BCHAT.render("planner", conversation=self.conversation()) if self.chat else
                BMATH.render("plan", context=printout(shown), format_example=BMATH.render("plan_example")))
        text, fields = yield from self.document(role, conversation(role.system, user), "Plan", PLAN)
        return [Msg(text, role.profile, "Plan", role.name, fields=fields)]

    def solve(self, role: Role, news: list[Msg], r: int) -> Gen:
        user = (BCHAT.render("solver", conversation=self.conversation()) if self.chat else
                BMATH.render("solve", context=printout(role.memory), format_example=BMATH.render("solve_example")))
        text, fields = yield from self.document(role, conversation(role.system, user), "Solve", SOLUTION)
        if fields is None:  # chat: the first code block is the computation, the box the answer
            try:
                computation = first_code_block(text)
            except ParseError:
                computation = ""
            fields = {"Computation": computation, "Final Answer": text}
        role.state["answer"] = self.task.extract(str(fields["Final Answer"])) or str(fields["Final Answer"]).strip()
        return [Msg(text, role.profile, "Solve", role.name, fields=fields)]

    def check(self, role: Role, news: list[Msg], r: int) -> Gen:
        yield from ()  # the checker makes no model call: a generator that asks nothing
        checks = role.state.get("checks", 0)
        if checks >= QA_ROUNDS:
            self.acted.append([r, role.name, "skip (checks exceeded)"])
            return []
        role.state["checks"] = checks + 1
        self.acted.append([r, role.name, "Check"])
        fields = news[-1].fields or {}
        computation = str(fields.get("Computation", "")).strip()
        answer = str(fields.get("Final Answer", "")).strip()
        value = None
        if computation:
            run = run_python(f"__value = (\n{computation}\n)\nprint(__value)\n", limits=Limits(wall_s=RUN_TIMEOUT_S))
            error = run.summary() if not run.ok else None
            value = run.stdout.strip() if run.ok else None
        else:
            error = "there is no computation"
        stated = self.task.extract(answer) or answer
        from hivethink.tasks.math import answers_match

        passed = value is not None and answers_match(value, stated)
        self.rec.event("message", role.name, f"{computation} = {value}" if value is not None else str(error),
                       step=r, data={"sandbox": True, "passed": passed})
        if passed:
            return [Msg("PASS", role.profile, "CheckPassed", role.name)]
        report = (BMATH.render("report_mismatch", computation=computation, value=value, answer=stated)
                  if value is not None else BMATH.render("report_error", computation=computation, error=error))
        return [Msg(BMATH.render("feedback", report=report), role.profile, "CheckFailed", role.name)]

    # -- the answer ---------------------------------------------------------------------------
    def answer(self) -> str | None:
        if self.math:
            solver = next(r for r in self.roles if r.name == "Alex")
            found = solver.state.get("answer")
            return str(found) if found else None
        if not self.files:
            return None
        entry = str(self.instance.data.get("entry_point", ""))
        pattern = re.compile(rf"^(?:async\s+def|def|class)\s+{re.escape(entry)}\b", re.M) if entry else None
        for code in self.files.values():
            if pattern is not None and pattern.search(code):
                return code
        return "\n\n".join(self.files.values())


__all__ = ["ADAPTATION", "Metagpt", "Msg", "printout"]
