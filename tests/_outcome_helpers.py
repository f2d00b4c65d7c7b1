"""Helpers for the outcome tests: small traces with error spans and outcome spans."""

from __future__ import annotations

from halo_live.exporter import canonical

BASE_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z


def at(seconds: float) -> str:
    return canonical.iso_from_ns(BASE_NS + int(seconds * 1e9))


def span(trace: str, sid: str, parent: str = "", *, name: str = "step", start: float = 0.0,
         end: float = 1.0, error: str | None = None, attrs: dict | None = None, run: str = "r1") -> bytes:
    """One canonical span of `trace` (ids are short readable strings)."""
    attributes = {canonical.INF_RUN_ID: run, **(attrs or {})}
    attributes.update(canonical.project(attributes, project_id="p",
                                        resource_attrs={canonical.INF_RUN_ID: run}))
    line = canonical.canonical_line(
        trace_id=trace, span_id=sid, parent_span_id=parent, name=name, kind=canonical.SPAN_KIND_INTERNAL,
        start_time=at(start), end_time=at(end),
        status_code=canonical.STATUS_ERROR if error else canonical.STATUS_OK, status_message=error or "",
        resource_attributes={canonical.SERVICE_NAME: "svc", canonical.INF_RUN_ID: run}, scope_name="t",
        scope_version="", attributes=attributes)
    return canonical.encode_line(line)


def outcome(trace: str, sid: str, *, passed: bool | None, end: float = 1.0, task: str | None = None,
            score: float | None = None, label: str | None = None, explanation: str | None = None,
            parent: str = "root", run: str = "r1") -> bytes:
    """An outcome span, as `record_outcome` writes it."""
    attrs = canonical.outcome_attributes(passed=passed, score=score, task_id=task, label=label,
                                         explanation=explanation)
    return span(trace, sid, parent, name=canonical.EVALUATION_RESULT, start=end, end=end, attrs=attrs, run=run)


def task_trace(trace: str, *, errors: list[tuple[str, str]] = (), passed: bool | None = None,
               task: str | None = None, tools: list[tuple[str, str, str]] = (), answer: str = "an answer",
               run: str = "r1") -> bytes:
    """A task's trace: an agent root, tool calls (name, input, output), error spans, an LLM answer,
    and an outcome span when `passed` is given."""
    lines = [span(trace, "root", name="agent.helper", end=9.0, run=run,
                  attrs={canonical.INF_OBSERVATION_KIND: canonical.OBS_AGENT, canonical.INF_AGENT_NAME: "helper"})]
    for i, (tool, given, output) in enumerate(tools):
        lines.append(span(trace, f"tool{i}", "root", name=f"function.{tool}", start=1 + i, end=1.5 + i, run=run,
                          attrs={canonical.INF_OBSERVATION_KIND: canonical.OBS_TOOL, canonical.OI_TOOL_NAME: tool,
                                 canonical.OI_INPUT_VALUE: given, canonical.OI_OUTPUT_VALUE: output}))
    for i, (name, message) in enumerate(errors):
        lines.append(span(trace, f"err{i}", "root", name=name, start=5, end=5.5, error=message, run=run))
    lines.append(span(trace, "llm", "root", name="response.m", start=6, end=7, run=run,
                      attrs={canonical.INF_OBSERVATION_KIND: canonical.OBS_LLM, canonical.OI_OUTPUT_VALUE: answer}))
    if passed is not None:
        lines.append(outcome(trace, "verdict", passed=passed, end=8.0, task=task, run=run,
                             score=1.0 if passed else 0.0, label="correct" if passed else "wrong answer"))
    return b"".join(lines)
