"""Helpers for the indexer tests: datasets with edge cases, dumps, reference-shaped answers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.gen_traces import generate
from halo_live.exporter import canonical
from halo_live.indexer import IndexFilters, TraceIndex, TraceRow


def span_line(trace_id: str, span_id: str, parent: str = "", *, name: str = "step",
              start: str = "2026-01-01T00:00:01.000000000Z", end: str = "2026-01-01T00:00:02.000000000Z",
              error: str | None = None, service: str | None = "svc", attrs: dict | None = None) -> bytes:
    """One canonical span line with the given fields (attributes passed through as is)."""
    resource = {canonical.SERVICE_NAME: service} if service is not None else {}
    line = canonical.canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
        kind=canonical.SPAN_KIND_INTERNAL, start_time=start, end_time=end,
        status_code=canonical.STATUS_ERROR if error is not None else canonical.STATUS_UNSET,
        status_message=error or "", resource_attributes=resource, scope_name="t",
        scope_version="", attributes=attrs or {},
    )
    return canonical.encode_line(line)


def odd_lines() -> list[bytes]:
    """Spans exercising every rollup rule: missing keys, mismatched projects, missing parents,
    agent ids without names, TOOL errors, non-int tokens, an empty service name, odd trace ids."""
    t = "odd-trace/ünïcode"
    return [
        span_line(t, "a1", "root-x", name="tool call", error="boom",
                  attrs={canonical.OI_SPAN_KIND: "TOOL", canonical.INF_PROJECT_ID: "p1", canonical.OI_AGENT_ID: "agent-7"}),
        span_line(t, "a2", "a1", attrs={canonical.INF_PROJECT_ID: "p2", canonical.INF_LLM_INPUT_TOKENS: 5,
                                        canonical.INF_LLM_OUTPUT_TOKENS: "7", canonical.OI_LLM_MODEL_NAME: "m-oi"},
                  start="2026-01-01T00:00:00.500000000Z"),
        span_line(t, "a3", "a9", service="", end="2026-01-01T00:00:09.000000000Z",
                  attrs={canonical.INF_AGENT_NAME: "solo", canonical.INF_LLM_MODEL_NAME: "m-inf", canonical.INF_AGENT_ID: ""}),
        span_line("t2", "b1", "", name="root", attrs={canonical.INF_PROJECT_ID: "p2"}, service=None),
        span_line("t2", "b2", "b1", error="x" * 300, name="llm",
                  attrs={canonical.OI_SPAN_KIND: "LLM", canonical.INF_LLM_INPUT_TOKENS: 3}),
        span_line("t3-no-inference", "c1", "", attrs={"gen_ai.request.model": "gpt-x"}),
    ]


def write_dataset(path: Path, traces: int = 60, seed: int = 3, extra: list[bytes] | None = None) -> Path:
    """A generated dataset (interleaved, with errors) plus `extra` lines appended."""
    generate(path, traces, seed=seed, error_rate=0.08)
    if extra:
        with open(path, "ab") as fh:
            fh.write(b"".join(extra))
    return path


def build(path, index_dir: Path, **options) -> TraceIndex:
    idx = TraceIndex.open(path, index_dir, **options)
    idx.catch_up()
    return idx


def dump(idx: TraceIndex) -> dict:
    """Everything the index answers, minus wall-clock fields: equal dumps = equal indexes."""
    with idx.snapshot() as snap:
        totals = snap.totals()
        totals.last_indexed_at = 0.0
        traces = {}
        for tid in snap.trace_ids():
            row = snap.trace(tid)
            row.last_seen = 0.0
            traces[tid] = (row, snap.spans(tid), snap.error_spans(tid))
        return {"totals": totals, "order": snap.trace_ids(), "traces": traces,
                "signatures": snap.error_signatures(), "bad": snap.bad_lines(10_000)}


# --- reference-shaped answers computed from a snapshot ------------------------------

def index_filters(filters: dict) -> IndexFilters:
    return IndexFilters(**{k: v for k, v in filters.items() if k != "regex_pattern"})


def summary(row: TraceRow) -> dict:
    """The reference's TraceSummary of a row."""
    keys = ("trace_id", "span_count", "start_time", "end_time", "has_errors", "service_names",
            "model_names", "total_input_tokens", "total_output_tokens", "agent_names", "agent_ids",
            "missing_parent_count", "missing_agent_identity_count", "project_id_mismatch_count",
            "otel_error_span_count", "tool_error_span_count", "raw_jsonl_bytes")
    return {k: getattr(row, k) for k in keys}


def overview(snap, filters: dict) -> dict:
    """The reference's DatasetOverview, from rows and error spans (what the engine does)."""
    ids = snap.trace_ids(index_filters(filters))
    rows = snap.rows(ids)
    if not rows:
        empty = {k: 0 for k in ("total_traces", "total_spans", "error_trace_count", "missing_parent_count",
                                "missing_agent_identity_count", "project_id_mismatch_count",
                                "otel_error_span_count", "tool_error_span_count", "total_input_tokens",
                                "total_output_tokens", "raw_jsonl_bytes")}
        return {**empty, "earliest_start_time": "", "latest_end_time": "", "service_names": [],
                "model_names": [], "agent_names": [], "agent_ids": [], "sample_trace_ids": [],
                "error_taxonomy": []}
    counts: Counter = Counter()
    traces: dict = {}
    for row in [r for r in rows if r.has_errors][:2000]:
        for name, message in snap.error_spans(row.trace_id):
            key = (name, message[:200])
            counts[key] += 1
            traces.setdefault(key, set()).add(row.trace_id)
    union = lambda attr: sorted({v for r in rows for v in getattr(r, attr)})  # noqa: E731
    return {
        "total_traces": len(rows), "total_spans": sum(r.span_count for r in rows),
        "earliest_start_time": min(r.start_time for r in rows),
        "latest_end_time": max(r.end_time for r in rows),
        "service_names": union("service_names"), "model_names": union("model_names"),
        "agent_names": union("agent_names"), "agent_ids": union("agent_ids"),
        "error_trace_count": sum(r.has_errors for r in rows),
        **{k: sum(getattr(r, k) for r in rows) for k in (
            "missing_parent_count", "missing_agent_identity_count", "project_id_mismatch_count",
            "otel_error_span_count", "tool_error_span_count", "total_input_tokens",
            "total_output_tokens", "raw_jsonl_bytes")},
        "sample_trace_ids": ids[:20],
        "error_taxonomy": [
            {"span_name": n, "status_message": m, "error_span_count": c,
             "trace_count": len(traces[(n, m)]), "example_trace_ids": sorted(traces[(n, m)])[:3]}
            for (n, m), c in counts.most_common(20)
        ],
    }


def totals_overview(snap) -> dict:
    """The unfiltered overview from DatasetTotals alone (no row reads)."""
    t = snap.totals()
    keys = ("total_traces", "total_spans", "earliest_start_time", "latest_end_time", "service_names",
            "model_names", "agent_names", "agent_ids", "error_trace_count", "missing_parent_count",
            "missing_agent_identity_count", "project_id_mismatch_count", "otel_error_span_count",
            "tool_error_span_count", "total_input_tokens", "total_output_tokens", "raw_jsonl_bytes")
    return {k: getattr(t, k) for k in keys}
