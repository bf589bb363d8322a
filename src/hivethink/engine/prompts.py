"""What the workers are told: names, the shared-workspace system prompt, headers and nudges."""

from __future__ import annotations

from hivethink.names import NAMES, worker_names

__all__ = ["MAX_WORKERS", "worker_names"]

MAX_WORKERS = len(NAMES)


def system_prompt(names: list[str]) -> str:
    if len(names) == 1:
        return (f"You are {names[0]}, solving a problem step by step. Think in short paragraphs. "
                "When you are sure, put the final answer inside \\boxed{}.")
    team = ", ".join(names[:-1]) + f" and {names[-1]}"
    return (
        f"You are one of {len(names)} workers ({team}) solving the same problem together, at the "
        "same time, in one shared workspace. Everyone sees everyone's text as it is written: the "
        "finished steps of all workers, then the steps the others are writing right now, then your "
        "own current step. Work as a team: say briefly what you will do, split the work, use what "
        "the others found, and if someone is already doing what you do, stop and take another part. "
        "Write short steps. When the team has the answer, put it inside \\boxed{}."
    )


def step_header(name: str, k: int) -> str:
    return f"**{name} [{k}]:** "


def stream_header(name: str) -> str:
    """Header of a worker's whole stream in layouts without steps (contiguous, independent)."""
    return f"**{name}:** "


OTHERS_HEADER = "\n\n### Steps in progress (other workers)\n\n"
OWN_HEADER = "\n\n### Your step in progress\n\n"
REDUNDANCY_CHECK = "(Quick check: am I doing redundant work? (yes/no): "
FINISHER = "\n\nI must answer now. The final answer is \\boxed{"
