"""`halo report`: a deterministic failure report, no LLM involved.

`build_report(store, top)` returns plain JSON-ready data: the pass rate of
the recorded task outcomes, the dataset overview, error signatures ranked by the
one ranking rule (`halo_live.engine.outcomes`: where outcomes exist, the failures
a signature explains come first), per-tool error rates, silent failures (failed
tasks without an error span), the slowest and the most token-hungry traces, and
the traces still in progress. Everything but the tool error rates and the silent
failures' examples comes from the index; per-tool rates need each TOOL span's
tool name, which the index keeps per trace only, so the report reads the spans
of traces that called a tool (once, in dataset order), and a silent failure's
last tool calls and final output are read from its spans. Everything is read
from one snapshot, so the sections agree with each other.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from halo_live.engine.models import TraceFilters
from halo_live.engine.outcomes import rank_index_signatures, wilson
from halo_live.engine.render import cut, iso_from_epoch
from halo_live.engine.store import TraceStore
from halo_live.exporter import canonical
from halo_live.indexer import IndexFilters

DEFAULT_TOP = 10
CAUSE_CHARS = 160
SILENT_EXAMPLES = 5
LAST_TOOL_CALLS = 3
OUTPUT_CHARS = 240
# How the Agents SDK ends an error text it withheld from the trace.
_SDK_REDACTED = "Error details are redacted."
# One substring scan per line instead of parsing every span: both tool-name
# keys (`tool.name`, `gen_ai.tool.name`) end with these bytes.
_TOOL_KEY_TAIL = f'{canonical.OI_TOOL_NAME}"'.encode()
assert canonical.GENAI_TOOL_NAME.endswith(canonical.OI_TOOL_NAME)


def build_report(store: TraceStore, top: int = DEFAULT_TOP) -> dict[str, Any]:
    """The whole report as a dict (what `halo report --json` prints)."""
    with store.snapshot() as snap:
        overview = store.overview_in(snap, TraceFilters())
        rows = snap.rows(snap.trace_ids(None))
        totals = snap.totals()
        signatures = _signatures(snap, top, totals.passed_traces, totals.failed_traces)
        tools = tool_error_rates(snap, rows)
        bad_lines = totals.bad_lines
        silent = silent_failures(snap, min(top, SILENT_EXAMPLES)) if totals.failed_traces else None
    ov = overview.model_dump()
    outcomes = ov["outcomes"]
    if outcomes is not None:
        known = outcomes["passed"] + outcomes["failed"]
        outcomes["pass_rate_95ci"] = wilson(outcomes["passed"], known)
    return {
        "outcomes": outcomes,
        "overview": {key: ov[key] for key in (
            "total_traces", "total_spans", "error_trace_count", "in_progress_trace_count",
            "otel_error_span_count", "tool_error_span_count", "earliest_start_time",
            "latest_end_time", "service_names", "model_names", "agent_names", "tool_names",
            "total_input_tokens", "total_output_tokens", "raw_jsonl_bytes", "spans_indexed",
            "last_span_arrival", "index_lag_bytes")} | {"bad_lines": bad_lines},
        "error_signatures": signatures,
        "silent_failures": silent,
        "tool_error_rates": tools,
        "slowest_traces": [_brief(r) for r in _top(rows, lambda r: r.duration_ms or 0.0, top)],
        "token_hungry_traces": [_brief(r) for r in _top(
            rows, lambda r: r.total_input_tokens + r.total_output_tokens, top)],
        "in_progress_traces": [_brief(r) for r in sorted(
            (r for r in rows if not r.complete), key=lambda r: (r.start_time, r.trace_id))[:top]],
    }


def _top(rows: list[Any], key, n: int) -> list[Any]:
    ranked = sorted((r for r in rows if key(r)), key=lambda r: (-key(r), r.trace_id))
    return ranked[:n]


def _brief(row: Any) -> dict[str, Any]:
    return {
        "trace_id": row.trace_id,
        "duration_ms": round(row.duration_ms, 3) if row.duration_ms is not None else None,
        "span_count": row.span_count,
        "total_tokens": row.total_input_tokens + row.total_output_tokens,
        "has_errors": row.has_errors,
        "complete": row.complete,
        "start_time": row.start_time,
        "agent_names": list(row.agent_names),
        "last_seen": iso_from_epoch(row.last_seen),
    }


def _signatures(snap: Any, top: int, passed: int, failed: int) -> list[dict[str, Any]]:
    """Every error signature in the dataset (not capped like the overview's taxonomy), ranked.

    By the one ranking rule: where outcomes exist, the failures a signature
    explains first; then distinct traces hit, then error spans: one trace retrying
    a tool fifty times matters less than a failure every other run meets. (The
    overview's `error_taxonomy` keeps the reference's order; this report is ours.)
    With outcomes, each carries how many of its traces failed and its lift.
    """
    ranked = rank_index_signatures(snap.error_signatures(), passed, failed)
    out = []
    for g, lift in ranked[:top]:
        entry = {"span_name": g.span_name, "status_message": g.status_message,
                 "error_span_count": g.error_span_count, "trace_count": g.trace_count,
                 "example_trace_ids": list(g.example_trace_ids),
                 "example_cause": example_cause(snap, g.example_trace_ids[:1], g.span_name,
                                                g.status_message)}
        if passed + failed:
            entry.update(lift.as_dict())
        out.append(entry)
    return out


def silent_failures(snap: Any, examples: int = SILENT_EXAMPLES) -> dict[str, Any]:
    """Failed tasks whose traces hold no ERROR span: the count, and for the first few
    their outcome, last tool calls and final output (what to read to see why)."""
    flt = IndexFilters(outcome="failed", has_errors=False)
    return {"count": snap.count(flt),
            "examples": [_silent_example(snap, row) for row in snap.rows(snap.trace_ids(flt, 0, examples))]}


def _silent_example(snap: Any, row: Any) -> dict[str, Any]:
    spans = []  # (end time, span ref, span, attributes), by end time then file order
    for ref, line in zip(snap.spans(row.trace_id), snap.span_lines(row.trace_id)):
        try:
            span = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        attrs = span.get(canonical.ATTRIBUTES) if isinstance(span, dict) else None
        if isinstance(attrs, dict):
            spans.append((str(span.get(canonical.END_TIME) or ""), ref, span, attrs))
    spans.sort(key=lambda s: s[0])
    outcome = row.outcome
    explanation = next((a.get(canonical.GENAI_EVALUATION_EXPLANATION) for _, ref, _, a in spans
                        if (ref.file, ref.offset) == (outcome.file, outcome.offset)), None)
    tools = [(a, s) for _, _, s, a in spans if canonical.tool_name(a)]
    final = next((a.get(canonical.OI_OUTPUT_VALUE) for _, _, _, a in reversed(spans)
                  if a.get(canonical.INF_OBSERVATION_KIND) in (canonical.OBS_LLM, canonical.OBS_AGENT)
                  and a.get(canonical.OI_OUTPUT_VALUE) not in (None, "")), None)
    return {
        "trace_id": row.trace_id, "task_id": outcome.task_id, "label": outcome.label,
        "score": outcome.score, "explanation": cut(explanation, CAUSE_CHARS) if explanation else None,
        "last_tool_calls": [
            {"tool": canonical.tool_name(a), "input": cut(_text(a.get(canonical.OI_INPUT_VALUE)), CAUSE_CHARS),
             "output": cut(_text(a.get(canonical.OI_OUTPUT_VALUE)), CAUSE_CHARS), "status": _status_code(s)}
            for a, s in tools[-LAST_TOOL_CALLS:]],
        "final_output": cut(_text(final), OUTPUT_CHARS) if final is not None else None,
    }


def example_cause(snap: Any, trace_ids: list[str], span_name: str, message: str) -> str:
    """Why the first matching ERROR span of the example trace failed, cut to ~160 chars.

    Every Agents SDK tool error has the same status message, "Error running
    tool (non-fatal)"; the cause is in `sdk.error.data` (its "error") or, when
    the SDK redacted that (its default tool error handler does), in the span's
    output: the error text the model was given. Else the status message or
    the exception event.
    """
    if not trace_ids:
        return ""
    errors = [r for r in snap.spans(trace_ids[0]) if r.status_code == canonical.STATUS_ERROR]
    for ref in [r for r in errors if r.name == span_name] or errors:
        try:
            span = orjson.loads(snap.read_span(ref))
        except (OSError, KeyError, orjson.JSONDecodeError):
            continue  # a file rewritten under us: no example rather than a crash
        status = span.get(canonical.STATUS) if isinstance(span, dict) else None
        full = status.get(canonical.STATUS_MESSAGE_FIELD) if isinstance(status, dict) else None
        if not isinstance(full, str) or full[:len(message)] != message:
            continue
        attrs = span.get(canonical.ATTRIBUTES)
        attrs = attrs if isinstance(attrs, dict) else {}
        sdk = _sdk_error(attrs.get(canonical.SDK_ERROR_DATA))
        causes = (sdk, full, canonical.exception_message(span.get(canonical.EVENTS)),
                  _text(attrs.get(canonical.OI_OUTPUT_VALUE)))
        # the first that says more than the signature's (maybe cut) message itself
        cause = next((c for c in causes if c and c != message
                      and not c.endswith(_SDK_REDACTED)), sdk or full)
        return cut(cause, CAUSE_CHARS)
    return ""


def _status_code(span: dict) -> str | None:
    status = span.get(canonical.STATUS)
    return status.get(canonical.STATUS_CODE_FIELD) if isinstance(status, dict) else None


def _sdk_error(data: Any) -> str:
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
    if isinstance(data, dict):
        return _text(data.get("error"))
    return ""


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def tool_error_rates(snap: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """Per tool: calls (TOOL spans naming it), error spans, and their ratio, worst first."""
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for row in rows:
        if not row.tool_names:
            continue
        for line in snap.span_lines(row.trace_id):  # one range read per trace where it can
            if _TOOL_KEY_TAIL not in line:
                continue  # cheap byte test: most spans (LLM payloads) are never parsed
            span = orjson.loads(line)
            attrs = span.get(canonical.ATTRIBUTES)
            if type(attrs) is not dict:
                continue
            name = canonical.tool_name(attrs)
            if not name:
                continue
            calls[name] += 1
            status = span.get(canonical.STATUS)
            if type(status) is dict and status.get(canonical.STATUS_CODE_FIELD) == canonical.STATUS_ERROR:
                errors[name] += 1
    table = [
        {"tool": name, "calls": n, "error_spans": errors[name],
         "error_rate": round(errors[name] / n, 4)}
        for name, n in calls.items()
    ]
    table.sort(key=lambda t: (-t["error_spans"], -t["error_rate"], t["tool"]))
    return table
