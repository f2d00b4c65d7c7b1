"""What the web page needs beyond the trace tools: run counters, a histogram, a span outline.

All read one index snapshot of the `TraceStore` and return JSON-ready dicts.
The outline carries the few fields a tree and a waterfall draw (names, ids,
status, times, model, tool), never the attribute bodies, so a trace of
thousands of spans stays a small answer; a span's body comes from the
`view_spans` tool when the user opens it.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any

import orjson

from halo_live.engine import signatures
from halo_live.engine.outcomes import pass_rate, rank_index_signatures
from halo_live.engine.render import iso_from_epoch
from halo_live.engine.store import ToolError, TraceStore
from halo_live.engine.ui.conversation import conversation
from halo_live.exporter import canonical as c

HISTOGRAM_BUCKETS = 60
TOP_SIGNATURES = 20
OUTLINE_MAX_SPANS = 20_000  # a bound on one answer; the page says when it is cut
STATUS_MESSAGE_CHARS = 300
RAW_LINE_MAX_BYTES = 512 * 1024  # the raw JSON panel shows the head of a larger line


def iso_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch of a canonical time (`2026-01-01T00:00:00.123456789Z`)."""
    if not isinstance(value, str) or len(value) < 19:
        return None
    try:
        base = datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    frac = ""
    if value[19:20] in (".", ","):
        for ch in value[20:29]:
            if not ch.isdigit():
                break
            frac += ch
    return int(base.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


def iso_of_ns(ns: int) -> str:
    """The canonical spelling of `ns` (9 fractional digits, `Z`): compares as a string."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def counters(store: TraceStore) -> dict[str, Any]:
    """The Run page's live counters, from the maintained totals only (cheap: pushed on every change)."""
    with store.snapshot() as snap:
        t = snap.totals()
    return {
        "traces": t.total_traces, "spans": t.total_spans, "error_traces": t.error_trace_count,
        "error_share": round(t.error_trace_count / t.total_traces, 4) if t.total_traces else 0.0,
        "error_spans": t.otel_error_span_count, "input_tokens": t.total_input_tokens,
        "output_tokens": t.total_output_tokens, "in_progress": t.in_progress_traces,
        "bad_lines": t.bad_lines, "files": t.files, "raw_jsonl_bytes": t.raw_jsonl_bytes,
        "last_span_arrival": iso_from_epoch(t.last_indexed_at) if t.last_indexed_at else None,
        "pass_rate": pass_rate(t.passed_traces, t.failed_traces),  # None until outcomes are recorded
        "version": [t.indexed_bytes, t.total_spans, t.bad_lines],
    }


def run_summary(store: TraceStore, buckets: int = HISTOGRAM_BUCKETS) -> dict[str, Any]:
    """Counters, the ranked error signatures, the filter choices and traces over time."""
    with store.snapshot() as snap:
        t = snap.totals()
        sigs = [g for g, _ in rank_index_signatures(snap.error_signatures(), t.passed_traces,
                                                    t.failed_traces)[:TOP_SIGNATURES]]
        hist = histogram(list(snap.start_times()), buckets)
    return {
        "counters": counters(store),
        "signatures": [{"span_name": s.span_name, "status_message": s.status_message,
                        "trace_count": s.trace_count, "error_span_count": s.error_span_count,
                        "example_trace_ids": list(s.example_trace_ids)} for s in sigs],
        "ranking": signatures.RULE,
        "facets": {"model_names": sorted(t.model_names), "agent_names": sorted(t.agent_names),
                   "service_names": sorted(t.service_names), "tool_names": sorted(t.tool_names)},
        "histogram": hist,
    }


def histogram(start_times: list[str], buckets: int) -> dict[str, Any]:
    """Traces per time bucket between the first and the last start (`start_times` ascending).

    Bucket edges are canonical time strings, so each start compares as a string,
    exactly as the index's time filters do; one pass, no parsing per trace.
    """
    # Only the ends are parsed (a time that does not parse sorts first or last: dropped there).
    times = start_times
    while times and iso_ns(times[0]) is None:
        times = times[1:]
    while times and iso_ns(times[-1]) is None:
        times = times[:-1]
    if not times:
        return {"start": None, "end": None, "bucket_seconds": 0, "counts": [], "edges": []}
    lo, hi = iso_ns(times[0]), iso_ns(times[-1])
    width = max((hi - lo) // buckets + 1, 1_000_000)  # at least 1 ms a bucket
    n = min(buckets, (hi - lo) // width + 1)
    edges = [iso_of_ns(lo + i * width) for i in range(n + 1)]
    counts = [0] * n
    i = 0
    for s in times:
        while i < n - 1 and s >= edges[i + 1]:
            i += 1
        counts[i] += 1
    return {"start": edges[0], "end": edges[-1], "bucket_seconds": width / 1e9, "counts": counts,
            "edges": edges}


def _attr(attrs: dict, *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, ""):
            return value
    return None


def outline(store: TraceStore, trace_id: str) -> dict[str, Any]:
    """Every span of a trace without its attribute bodies: what a tree and a waterfall draw."""
    with store.snapshot() as snap:
        row = snap.trace(trace_id)
        if row is None:
            raise ToolError(f"unknown trace_id {trace_id!r}")
        lines = list(snap.span_lines(trace_id))
    cut = len(lines) > OUTLINE_MAX_SPANS
    spans = []
    for line in lines[:OUTLINE_MAX_SPANS]:
        try:
            span = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(span, dict):
            continue
        attrs = span.get(c.ATTRIBUTES) if isinstance(span.get(c.ATTRIBUTES), dict) else {}
        status = span.get(c.STATUS) if isinstance(span.get(c.STATUS), dict) else {}
        message = status.get(c.STATUS_MESSAGE_FIELD)
        spans.append({
            "span_id": str(span.get(c.SPAN_ID, "")), "parent_span_id": str(span.get(c.PARENT_SPAN_ID) or ""),
            "name": str(span.get(c.NAME, "")), "status": str(status.get(c.STATUS_CODE_FIELD, "")),
            "status_message": message[:STATUS_MESSAGE_CHARS] if isinstance(message, str) else "",
            "kind": str(attrs.get(c.INF_OBSERVATION_KIND) or "SPAN"),
            "start_time": span.get(c.START_TIME), "end_time": span.get(c.END_TIME),
            "start_ns": iso_ns(span.get(c.START_TIME)), "end_ns": iso_ns(span.get(c.END_TIME)),
            "model": _attr(attrs, c.INF_LLM_MODEL_NAME),
            "tool": _attr(attrs, c.OI_TOOL_NAME, c.GENAI_TOOL_NAME),
            "agent": _attr(attrs, c.INF_AGENT_NAME),
            "tokens": (attrs.get(c.INF_LLM_INPUT_TOKENS) or 0) + (attrs.get(c.INF_LLM_OUTPUT_TOKENS) or 0)
            if all(isinstance(attrs.get(k, 0), int) for k in (c.INF_LLM_INPUT_TOKENS, c.INF_LLM_OUTPUT_TOKENS))
            else 0,
        })
    starts = [s["start_ns"] for s in spans if s["start_ns"] is not None]
    verdict = trace_outcome(store, trace_id)
    ends = [s["end_ns"] for s in spans if s["end_ns"] is not None]
    return {
        "trace_id": trace_id, "span_count": row.span_count, "truncated": cut,
        "has_errors": row.has_errors, "complete": row.complete, "duration_ms": row.duration_ms,
        "start_ns": min(starts) if starts else None, "end_ns": max(ends) if ends else None,
        "start_time": row.start_time, "end_time": row.end_time, "spans": spans, "outcome": verdict,
    }


def trace_outcome(store: TraceStore, trace_id: str) -> dict[str, Any] | None:
    """The trace's latest outcome as the index keeps it, plus its explanation and span id,
    read from the outcome span the index points at (None when the trace has no outcome)."""
    with store.snapshot() as snap:
        row = snap.trace(trace_id)
        o = getattr(row, "outcome", None)
        if o is None:
            return None
        ref = next((r for r in snap.spans(trace_id) if r.file == o.file and r.offset == o.offset), None)
        raw = snap.read_span(ref) if ref is not None else b""
    try:
        span = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        span = {}
    attrs = span.get(c.ATTRIBUTES) if isinstance(span, dict) and isinstance(span.get(c.ATTRIBUTES), dict) else {}
    explanation = attrs.get(c.GENAI_EVALUATION_EXPLANATION)
    return {"status": o.status, "passed": o.passed, "score": o.score, "task_id": o.task_id, "label": o.label,
            "explanation": explanation[:STATUS_MESSAGE_CHARS * 10] if isinstance(explanation, str) else None,
            "span_id": ref.span_id if ref is not None else None}


def span_extras(store: TraceStore, trace_path: str, trace_id: str, span_id: str) -> dict[str, Any]:
    """A span's raw JSON line (its head past 512 KB), its conversation and the `halo tool` command."""
    with store.snapshot() as snap:
        if snap.trace(trace_id) is None:
            raise ToolError(f"unknown trace_id {trace_id!r}")
        ref = next((r for r in snap.spans(trace_id) if r.span_id == span_id), None)
        if ref is None:
            raise ToolError(f"span_id={span_id!r} not found in trace_id={trace_id!r}")
        raw = snap.read_span(ref)
    try:
        span = orjson.loads(raw)
    except orjson.JSONDecodeError:
        span = {}
    attrs = span.get(c.ATTRIBUTES) if isinstance(span, dict) else None
    args = orjson.dumps({"trace_id": trace_id, "span_ids": [span_id]}).decode()
    return {
        "raw": raw[:RAW_LINE_MAX_BYTES].decode("utf-8", errors="replace"),
        "raw_bytes": len(raw), "raw_truncated": len(raw) > RAW_LINE_MAX_BYTES,
        "conversation": conversation(attrs if isinstance(attrs, dict) else {}),
        "command": f"halo tool view_spans {shlex.quote(trace_path)} --args {shlex.quote(args)}",
    }
