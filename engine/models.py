"""Pydantic contracts of the trace tools: arguments and results.

Names, shapes, defaults and validation follow halo-engine 0.3.5's
`trace_query_models.py` field for field, so a result serialized from these
models equals the reference's on a static file. Our additions (more filters,
live facts in the overview, two fields on a trace summary) are new optional
fields appended after the reference's own; nothing of theirs changes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


# defer_build: a model's validator is built on its first use, not at import, so a
# command that runs one tool pays for that tool's models only (start-up cost).
class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


def _absent_when_none(description: str, **constraints: Any) -> Any:
    """A halo-live result field that is left out of the JSON while it is None.

    Paging fields appear only when a call's budget cut the answer short, so an
    answer that fits is field for field the reference's.
    """
    return Field(default=None, exclude_if=lambda value: value is None, description=description,
                 **constraints)


_OFFSET_DESCRIPTION = "Where to start: pass a result's `next_offset` to read the next page (default 0)."
_NEXT_OFFSET = "Present when the call's budget cut this page short: call again with `offset` set to it."
_REMAINING = "Present with `next_offset`: how many items come after this page."
_BUDGET_NOTE = "Present when the budget cut or shortened the answer: what was left out and how to get it."


# --- the canonical span, as the reference parses and re-serializes it ----------------


class SpanStatus(_Closed):
    """OTel span status: code (e.g. ``STATUS_CODE_ERROR``) and optional message."""

    code: str
    message: str = ""


class SpanResource(_Closed):
    """OTel resource block (``service.name`` and friends)."""

    attributes: dict[str, Any]


class SpanScope(_Closed):
    """OTel instrumentation scope."""

    name: str
    version: str = ""


class SpanRecord(BaseModel):
    """One canonical span, one JSONL line; unknown top-level keys are kept (the reference's rule)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    trace_id: str
    span_id: str
    parent_span_id: str = ""
    trace_state: str = ""
    name: str
    kind: str
    start_time: str
    end_time: str
    status: SpanStatus
    resource: SpanResource
    scope: SpanScope
    attributes: dict[str, Any]


# --- arguments --------------------------------------------------------------------------


class TraceFilters(_Closed):
    """ANDed trace predicates for overview/query/count; every field is optional.

    All but ``regex_pattern`` are answered from the index. ``regex_pattern`` scans
    the raw span JSON of the candidate traces, so narrow with indexed fields first.
    ``has_errors`` means at least one span with OTel status ERROR; failures written
    only into attributes or payloads need ``regex_pattern`` or per-trace inspection.
    """

    has_errors: bool | None = None
    model_names: list[str] | None = None
    service_names: list[str] | None = None
    agent_names: list[str] | None = None
    project_id: str | None = None
    start_time_gte: str | None = None
    end_time_lte: str | None = None
    regex_pattern: str | None = None
    # halo-live additions
    tool_names: list[str] | None = Field(
        default=None, description="Traces that called any of these tools.")
    complete: bool | None = Field(
        default=None,
        description="true: only traces whose root span has arrived; false: only traces still in progress.")
    min_duration_ms: float | None = Field(
        default=None, ge=0, description="Only traces lasting at least this many milliseconds.")
    run_ids: list[str] | None = Field(
        default=None, description="Traces written by any of these runs (inference.run_id).")
    outcome: Literal["passed", "failed", "unknown"] | None = Field(
        default=None,
        description=("The task outcome recorded in the trace (its latest outcome span): passed, failed, "
                     "or unknown (none recorded, or one that says neither)."))
    task_ids: list[str] | None = Field(
        default=None, description="Traces whose recorded outcome names any of these task ids.")
    min_score: float | None = Field(
        default=None, description="Traces whose recorded outcome has a score >= this.")
    max_score: float | None = Field(
        default=None, description="Traces whose recorded outcome has a score <= this.")
    state: Literal["complete", "running", "stuck", "abandoned"] | None = Field(
        default=None,
        description=("Where the task is now: running, stuck (no span started or ended for the stuck "
                     "threshold, default 300 s), abandoned (its process is gone, or silent far past the "
                     "threshold), or complete (none of these)."))


class DatasetOverviewArguments(_Closed):
    """Arguments of ``get_dataset_overview``: the filter set applied before the rollup."""

    filters: TraceFilters = Field(default_factory=TraceFilters)


class QueryTracesArguments(_Closed):
    """Arguments of ``query_traces``: filters plus pagination."""

    filters: TraceFilters = Field(default_factory=TraceFilters)
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class CountTracesArguments(_Closed):
    """Arguments of ``count_traces``: filters only."""

    filters: TraceFilters = Field(default_factory=TraceFilters)


class ViewTraceArguments(_Closed):
    """Arguments of ``view_trace``."""

    trace_id: str
    # halo-live addition: the cursor of a budget-cut view
    offset: int = Field(default=0, ge=0, description="First span to return, in file order. "
                        + _OFFSET_DESCRIPTION)


class ViewSpansArguments(_Closed):
    """Arguments of ``view_spans``: a trace and up to 200 of its span ids."""

    trace_id: str
    span_ids: list[str] = Field(min_length=1, max_length=200)
    # halo-live addition: the cursor of a budget-cut view
    offset: int = Field(default=0, ge=0, description="First of the selected spans to return. "
                        + _OFFSET_DESCRIPTION)


class SearchTraceArguments(_Closed):
    """Arguments of ``search_trace``: a Python regex over each span's raw JSON."""

    trace_id: str
    regex_pattern: str
    context_buffer_chars: int = Field(default=100, ge=0, le=2_000)
    max_matches: int = Field(default=50, ge=1, le=500)
    # halo-live addition: skip matches already read
    offset: int = Field(default=0, ge=0, description="Matches to skip (in file order). "
                        + _OFFSET_DESCRIPTION)


class SearchSpanArguments(_Closed):
    """Arguments of ``search_span``: a Python regex over one span's raw JSON."""

    trace_id: str
    span_id: str
    regex_pattern: str
    context_buffer_chars: int = Field(default=100, ge=0, le=2_000)
    max_matches: int = Field(default=50, ge=1, le=500)
    # halo-live addition: skip matches already read
    offset: int = Field(default=0, ge=0, description="Matches to skip (in file order). "
                        + _OFFSET_DESCRIPTION)


class FailureReportArguments(_Closed):
    """Arguments of ``get_failure_report``."""

    top: int = Field(default=10, ge=1, le=100, description="Entries in each ranked section (default 10).")


class CompareRunsArguments(_Closed):
    """Arguments of ``compare_runs``: two runs of the dataset, by run id."""

    run_before: str = Field(description="The baseline run's id (`run_ids` in get_dataset_overview).")
    run_after: str = Field(description="The changed run's id.")
    top: int = Field(default=15, ge=1, le=200,
                     description="Error signatures listed, those hitting the most traces first (default 15).")


# --- results ----------------------------------------------------------------------------


class TraceOutcome(_Closed):
    """A trace's latest recorded outcome (an outcome span in the trace)."""

    passed: bool | None = Field(description="true/false; null when the outcome says neither.")
    score: float | None = None
    task_id: str | None = None
    label: str | None = None


class TraceSummary(_Closed):
    """One trace as the index knows it (no JSONL read)."""

    trace_id: str
    span_count: int = Field(ge=0)
    start_time: str
    end_time: str
    has_errors: bool
    service_names: list[str]
    model_names: list[str]
    total_input_tokens: int = Field(ge=0)
    total_output_tokens: int = Field(ge=0)
    agent_names: list[str]
    agent_ids: list[str] = Field(default_factory=list)
    missing_parent_count: int = Field(default=0, ge=0)
    missing_agent_identity_count: int = Field(default=0, ge=0)
    project_id_mismatch_count: int = Field(default=0, ge=0)
    otel_error_span_count: int = Field(default=0, ge=0)
    tool_error_span_count: int = Field(default=0, ge=0)
    raw_jsonl_bytes: int = Field(ge=0)
    # halo-live additions
    tool_names: list[str] = Field(default_factory=list)
    complete: bool = True
    outcome: TraceOutcome | None = Field(
        default=None, description="The task outcome recorded in the trace; null when none was.")


class TraceQueryResult(_Closed):
    """A page of summaries plus the unsliced match ``total``."""

    traces: list[TraceSummary]
    total: int = Field(ge=0)
    # halo-live additions, present only when the budget cut the answer
    next_offset: int | None = _absent_when_none(_NEXT_OFFSET, ge=0)
    remaining_count: int | None = _absent_when_none(_REMAINING, ge=0)
    budget_note: str | None = _absent_when_none(_BUDGET_NOTE)


class TraceCountResult(_Closed):
    """How many traces match."""

    total: int = Field(ge=0)


class SpanMatchRecord(_Closed):
    """One regex match in one span's raw JSON; offsets are characters of the decoded line."""

    trace_id: str
    span_id: str
    span_index: int = Field(ge=0)
    span_name: str
    kind: str
    status_code: str
    parent_span_id: str
    raw_jsonl_bytes: int = Field(ge=0)
    match_text: str
    matched_context: str
    match_start_char: int = Field(ge=0)
    match_end_char: int = Field(ge=0)


class TraceSearchResult(_Closed):
    """Bounded matches in one trace; ``match_count`` is the unbounded total."""

    trace_id: str
    match_count: int = Field(ge=0)
    returned_match_count: int = Field(ge=0)
    has_more: bool
    matches: list[SpanMatchRecord]
    # halo-live additions, present only when the budget cut the answer
    next_offset: int | None = _absent_when_none(_NEXT_OFFSET, ge=0)
    remaining_count: int | None = _absent_when_none(_REMAINING, ge=0)
    budget_note: str | None = _absent_when_none(_BUDGET_NOTE)


class SpanSearchResult(_Closed):
    """Bounded matches in one span."""

    trace_id: str
    span_id: str
    match_count: int = Field(ge=0)
    returned_match_count: int = Field(ge=0)
    has_more: bool
    matches: list[SpanMatchRecord]
    # halo-live additions, present only when the budget cut the answer
    next_offset: int | None = _absent_when_none(_NEXT_OFFSET, ge=0)
    remaining_count: int | None = _absent_when_none(_REMAINING, ge=0)
    budget_note: str | None = _absent_when_none(_BUDGET_NOTE)


class OversizedTraceSummary(_Closed):
    """Sent instead of spans when a view would exceed the per-call budget."""

    trace_id: str
    span_count: int = Field(ge=0)
    truncated_response_bytes: int = Field(ge=0)
    response_bytes_budget: int = Field(ge=0)
    span_response_bytes_min: int = Field(ge=0)
    span_response_bytes_median: int = Field(ge=0)
    span_response_bytes_max: int = Field(ge=0)
    top_span_names: list[tuple[str, int]] = Field(default_factory=list)
    error_span_count: int = Field(ge=0)
    recommendation: str = ""


class TraceView(_Closed):
    """Spans of one trace in file order, or an ``oversized`` summary instead."""

    trace_id: str
    spans: list[SpanRecord]
    oversized: OversizedTraceSummary | None = None
    # halo-live additions, present only when the budget cut the answer
    next_offset: int | None = _absent_when_none(_NEXT_OFFSET, ge=0)
    remaining_count: int | None = _absent_when_none(_REMAINING, ge=0)
    budget_note: str | None = _absent_when_none(_BUDGET_NOTE)


class ErrorTaxonomyGroup(_Closed):
    """One (span_name, status_message) error signature over the filtered traces."""

    span_name: str
    status_message: str
    error_span_count: int
    trace_count: int
    example_trace_ids: list[str]


class OutcomeCounts(_Closed):
    """How the matching traces' recorded outcomes came out."""

    passed: int = Field(ge=0)
    failed: int = Field(ge=0)
    unknown: int = Field(ge=0, description="Traces with no outcome, or one that says neither.")
    pass_rate: float | None = Field(description="passed / (passed + failed).")
    silent_failure_count: int = Field(
        ge=0, description="Failed traces without any ERROR span: failures only their content shows.")


class SignatureOutcomes(_Closed):
    """An error signature against the outcomes of the traces it hits."""

    span_name: str
    status_message: str
    trace_count: int = Field(ge=0, description="Traces hit (with or without a known outcome).")
    error_span_count: int = Field(ge=0)
    outcome_traces: int = Field(ge=0, description="Traces hit whose outcome is known.")
    failed_traces: int = Field(ge=0, description="Traces hit that failed.")
    failure_rate_with: float | None
    failure_rate_without: float | None = Field(
        description="Failure rate of the known-outcome traces this signature does not hit.")
    lift: float | None = Field(description="failure_rate_with / failure_rate_without.")
    excess_failures: float = Field(
        description="Failures above what failure_rate_without predicts: what the ranking uses.")
    example_trace_ids: list[str]


class OpenSpanInfo(_Closed):
    """A span that started and has not ended: what a task in flight is doing."""

    name: str
    kind: str = Field(description="LLM, TOOL, AGENT, CHAIN, GUARDRAIL or SPAN.")
    agent: str | None = None
    model: str | None = None
    started_at: str | None = Field(default=None, description="When it started (ISO-8601 UTC).")


class OpenTask(_Closed):
    """One trace in flight: its state and what it is doing."""

    trace_id: str
    state: Literal["running", "stuck", "abandoned"]
    doing: str = Field(description='In words, since `since`: "LLM call to gpt-4.1", "tool `grep`".')
    since: str | None = Field(default=None, description="When that began (ISO-8601 UTC).")
    last_activity: str | None = Field(
        default=None, description="When a span of it last started or ended (ISO-8601 UTC).")
    current_span: OpenSpanInfo | None = Field(
        default=None, description="Its innermost open span (known for SDK-traced tasks).")
    why: str = Field(default="", description="Why abandoned, e.g. \"process 123 is gone\".")
    pid: int | None = None
    host: str | None = None
    written: bool = Field(default=True, description="false while none of its spans is in the file yet.")


class LiveTasks(_Closed):
    """The matching traces by state now; the counts do not overlap and add up to all of them."""

    complete: int = Field(ge=0)
    running: int = Field(ge=0)
    stuck: int = Field(ge=0)
    abandoned: int = Field(ge=0)
    unwritten: int = Field(default=0, ge=0, description=(
        "Open traces none of whose spans is in the file yet (counted in running/stuck/abandoned, "
        "not in total_traces)."))
    stuck_after_seconds: float = Field(description="The stuck threshold these states were judged by.")
    open_tasks: list[OpenTask] = Field(
        default_factory=list, description="Abandoned, then stuck, then running tasks, longest silent first "
                                          "(at most 20).")


class DatasetOverview(_Closed):
    """Rollup of the filtered traces, plus live facts about the index."""

    total_traces: int
    total_spans: int
    earliest_start_time: str
    latest_end_time: str
    service_names: list[str]
    model_names: list[str]
    agent_names: list[str]
    agent_ids: list[str] = Field(default_factory=list)
    error_trace_count: int
    missing_parent_count: int = Field(default=0, ge=0)
    missing_agent_identity_count: int = Field(default=0, ge=0)
    project_id_mismatch_count: int = Field(default=0, ge=0)
    otel_error_span_count: int = Field(default=0, ge=0)
    tool_error_span_count: int = Field(default=0, ge=0)
    error_taxonomy: list[ErrorTaxonomyGroup] = Field(
        default_factory=list,
        description=(
            "Top error signatures grouped by (span_name, status_message), largest first, "
            "with distinct-trace counts and example trace ids. Start failure-mode analysis "
            "from these groups; verify with view_trace on the examples."
        ),
    )
    total_input_tokens: int
    total_output_tokens: int
    raw_jsonl_bytes: int = Field(ge=0)
    sample_trace_ids: list[str] = Field(default_factory=list)
    # halo-live additions: the dataset is live, say how live
    tool_names: list[str] = Field(default_factory=list)
    in_progress_trace_count: int = Field(
        default=0, ge=0, description="Matching traces whose root span has not arrived yet.")
    spans_indexed: int = Field(
        default=0, ge=0, description="Spans in the whole index (all traces, unfiltered).")
    last_span_arrival: str | None = Field(
        default=None, description="Wall-clock UTC time the newest span was indexed.")
    index_lag_bytes: int = Field(
        default=0, ge=0, description="Bytes written to the trace files but not yet indexed.")
    run_ids: list[str] = Field(
        default_factory=list,
        description="Runs among the matching traces (inference.run_id), in dataset order: "
                    "values for `filters.run_ids` and `compare_runs`.")
    outcomes: OutcomeCounts | None = Field(
        default=None, description="Recorded task outcomes of the matching traces; null when none has one.")
    failure_signatures: list[SignatureOutcomes] = Field(
        default_factory=list,
        description=("With outcomes: error signatures ranked by the failures they explain (failure rate "
                     "with vs without the signature). Start from these: a frequent signature that "
                     "passing traces hit as often is noise."))
    live_tasks: LiveTasks | None = _absent_when_none(
        "The tasks in flight now: running, stuck and abandoned counts and what each open one is doing.")
    duplicate_spans: int | None = _absent_when_none(
        "Span lines in the whole index that repeated a (trace id, span id) already seen, e.g. "
        "a retried export: each span is counted once. Present when any was seen.", ge=0)
    budget_note: str | None = _absent_when_none(_BUDGET_NOTE)


class DatasetOverviewResult(_Closed):
    """``get_dataset_overview``'s envelope."""

    result: DatasetOverview


class QueryTracesResult(_Closed):
    """``query_traces``'s envelope."""

    result: TraceQueryResult


class CountTracesResult(_Closed):
    """``count_traces``'s envelope."""

    result: TraceCountResult


class ViewTraceResult(_Closed):
    """``view_trace``'s and ``view_spans``'s envelope."""

    result: TraceView


class SearchTraceResult(_Closed):
    """``search_trace``'s envelope."""

    result: TraceSearchResult


class SearchSpanResult(_Closed):
    """``search_span``'s envelope."""

    result: SpanSearchResult
