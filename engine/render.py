"""Results built from index rows and raw span lines: summaries, views, match records.

Pure functions (no index, no files), shared by the store and the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import orjson

from halo_live.engine import budget
from halo_live.engine.bounded_regex import BoundedRegex
from halo_live.engine.models import SpanMatchRecord, SpanRecord, TraceOutcome, TraceSummary, TraceView
from halo_live.exporter.canonical import KIND, NAME, PARENT_SPAN_ID, SPAN_ID, STATUS, STATUS_CODE_FIELD


def summary(row: Any) -> TraceSummary:
    """An index row as the `TraceSummary` query_traces returns."""
    return TraceSummary(
        trace_id=row.trace_id, span_count=row.span_count, start_time=row.start_time,
        end_time=row.end_time, has_errors=row.has_errors, service_names=list(row.service_names),
        model_names=list(row.model_names), total_input_tokens=row.total_input_tokens,
        total_output_tokens=row.total_output_tokens, agent_names=list(row.agent_names),
        agent_ids=list(row.agent_ids), missing_parent_count=row.missing_parent_count,
        missing_agent_identity_count=row.missing_agent_identity_count,
        project_id_mismatch_count=row.project_id_mismatch_count,
        otel_error_span_count=row.otel_error_span_count,
        tool_error_span_count=row.tool_error_span_count, raw_jsonl_bytes=row.raw_jsonl_bytes,
        tool_names=sorted(getattr(row, "tool_names", ()) or ()), complete=bool(row.complete),
        outcome=outcome(getattr(row, "outcome", None)),
    )


def outcome(o: Any) -> TraceOutcome | None:
    """An index row's latest outcome as a `TraceOutcome` (None when it has none)."""
    if o is None:
        return None
    return TraceOutcome(passed=o.passed, score=o.score, task_id=o.task_id, label=o.label)


def view(trace_id: str, lines: Iterable[bytes], cap: int, limit: int, *, for_view_spans: bool,
         keep: int = 0) -> tuple[TraceView, bytes | None]:
    """The span `lines` with attributes capped at `cap` characters as a `TraceView`, or the
    oversized summary when they exceed `limit` bytes; and line number `keep`, raw.

    Spans are parsed one at a time and held only while they fit in `limit`, so
    a view's memory follows its budget, not the trace's size. The raw line kept
    is the one a page starting at `keep` re-reads with shorter heads.
    """
    tally = budget.ViewTally()
    spans: list[SpanRecord] | None = []
    kept = None
    for number, line in enumerate(lines):
        span = budget.capped_span(line, cap)
        tally.add(span)
        if number == keep:
            kept = line
        if spans is not None:
            if tally.total > limit:
                spans = None  # oversized: the summary needs only the tally
            else:
                spans.append(span)
    oversized = tally.summary(trace_id, budget=limit, for_view_spans=for_view_spans)
    if oversized is not None:
        return TraceView(trace_id=trace_id, spans=[], oversized=oversized), None
    return TraceView(trace_id=trace_id, spans=spans or []), kept


def search(trace_id: str, indexed_lines: Iterable[tuple[int, bytes]], pattern: BoundedRegex,
           context: int, max_matches: int, offset: int = 0) -> tuple[list[SpanMatchRecord], int]:
    """Match records of `pattern` over (span index, line) pairs: up to `max_matches` from match
    number `offset` on, and the full count.

    Offsets are characters of the line decoded as UTF-8 (bad bytes replaced),
    the reference's unit; a span is parsed only if it matched.
    """
    records: list[SpanMatchRecord] = []
    total = 0
    for span_index, line in indexed_lines:
        raw = line.decode("utf-8", errors="replace")
        span: dict[str, Any] | None = None
        for match in pattern.finditer(raw):
            total += 1
            if total <= offset or len(records) >= max_matches:
                continue
            if span is None:  # parse only spans that matched
                span = orjson.loads(line)
            start, end = match.start(), match.end()
            records.append(SpanMatchRecord(
                trace_id=trace_id, span_id=span[SPAN_ID], span_index=span_index,
                span_name=span[NAME], kind=span[KIND],
                status_code=span[STATUS][STATUS_CODE_FIELD],
                parent_span_id=span.get(PARENT_SPAN_ID, ""), raw_jsonl_bytes=len(line),
                match_text=raw[start:end],
                matched_context=raw[max(0, start - context):min(len(raw), end + context)],
                match_start_char=start, match_end_char=end,
            ))
    return records, total



def iso_from_epoch(seconds: float) -> str | None:
    """Wall-clock Unix seconds as ISO-8601 UTC to the millisecond; None for 0 (never)."""
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")


def cut(text: object, n: int) -> str:
    """`text` on one line (whitespace runs collapsed), at most `n` characters, "…" if cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
