"""`record_outcome()`: a task's pass/fail, written into the task's own trace.

    from halo_live import record_outcome, setup_tracing
    setup_tracing(project_id="bench-1")
    with trace(f"task {task.id}"):
        result = await Runner.run(agent, task.question)
        record_outcome(passed=check(result), score=1.0, task_id=task.id, label="correct")

Inside an Agents SDK trace the outcome is a custom span named
`gen_ai.evaluation.result`, so every installed processor sees it and ours writes
it as the outcome span. Outside one, in an OpenTelemetry app, it is a
`gen_ai.evaluation.result` event on the current span (OTel GenAI's own form),
which `HaloSpanExporter` and `halo serve` project the same way. The latest
outcome of a trace wins, so recording again (a re-grade) replaces the first.
"""

from __future__ import annotations

import logging
from typing import Any

from halo_live.exporter import canonical

logger = logging.getLogger(__name__)
_warned = False


def record_outcome(passed: bool | None = None, *, score: float | None = None,
                   task_id: str | None = None, label: str | None = None,
                   explanation: str | None = None, name: str | None = None) -> bool:
    """Record the current task's outcome in its trace; True if it was recorded.

    `passed` (True/False, None when unknown), `score` (a number), `task_id` (joins
    runs in `halo compare`), `label` (a short verdict such as "wrong answer"; it also
    gives `passed` when that is None and the label says pass or fail), `explanation`,
    `name` (the evaluation's name, default "task_outcome"). Raises `ValueError` for a
    bad argument; with no SDK trace and no OTel span current, logs once and returns False.
    """
    attrs = canonical.outcome_attributes(passed=passed, score=score, task_id=task_id, label=label,
                                         explanation=explanation, name=name)
    try:
        return _in_sdk_trace(attrs) or _on_otel_span(attrs) or _nowhere()
    except Exception as exc:  # tracing never breaks the harness
        _warn(f"cannot record the outcome: {exc!r}")
        return False


def _in_sdk_trace(attrs: dict[str, Any]) -> bool:
    try:
        from agents.tracing import custom_span, get_current_trace
    except ImportError:
        return False
    if get_current_trace() is None:
        return False
    with custom_span(canonical.EVALUATION_RESULT, dict(attrs)):
        pass
    return True


def _on_otel_span(attrs: dict[str, Any]) -> bool:
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    span = trace.get_current_span()
    if not span.get_span_context().is_valid or not span.is_recording():
        return False
    span.add_event(canonical.EVALUATION_RESULT, attributes=attrs)
    return True


def _nowhere() -> bool:
    _warn("record_outcome() was called outside any trace (no Agents SDK trace, no current "
          "OpenTelemetry span): the outcome is not recorded")
    return False


def _warn(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning("[non-fatal] halo: %s", message)
