"""Scores one task (does the agent's final answer contain the expected value?) and records
the verdict in the task's trace with the public `record_outcome`, so the index, the report,
the live view and `halo compare` all read the score from the traces."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from halo_live import record_outcome
from halo_live.demo.benchmark.tasks import Task


@dataclass
class TaskResult:
    """The outcome of one task, as a line of a worker's results file."""

    task_id: str
    passed: bool
    reason: str  # "correct" | "wrong answer" | "gave up" | "error: <Type>"
    answer: str | None
    trace_id: str | None
    worker: int
    duration_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def _norm(text: str) -> str:
    return text.replace('"', "").replace("'", "").strip().lower()


def check(task: Task, answer: str | None, error: BaseException | None = None) -> tuple[bool, str]:
    """(passed, reason) for `answer` (None when the run raised `error`)."""
    if error is not None:
        return False, f"error: {type(error).__name__}"
    if not answer:
        return False, "no answer"
    if _norm(task.expected) in _norm(answer):
        return True, "correct"
    if any(word in answer.lower() for word in ("unable", "could not", "does not appear", "don't know")):
        return False, "gave up"
    return False, "wrong answer"


def check_and_record(task: Task, answer: str | None, error: BaseException | None = None) -> tuple[bool, str]:
    """`check`, with the verdict recorded as the outcome of the current trace (call it inside)."""
    passed, reason = check(task, answer, error)
    record_outcome(passed=passed, score=1.0 if passed else 0.0, task_id=task.id, label=reason,
                   explanation=f"expected {task.expected!r} in the final answer")
    return passed, reason
