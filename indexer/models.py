"""The indexer's public value types: rows, span references, filters, totals, stats.

Plain slotted dataclasses: they are built on every read, so they stay cheap.
`TraceRow` carries every field of halo-engine 0.3.5's `TraceIndexRow`
(computed the way its builder computes them) plus halo-live's live facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Outcome:
    """A trace's latest outcome span (`record_outcome`, `halo annotate`, an OTel evaluation)."""

    passed: bool | None  # None: recorded, but neither pass nor fail
    score: float | None
    task_id: str | None
    label: str | None
    end_time: str  # the outcome span's end time: the latest outcome of a trace wins
    file: str  # where the outcome span is (dataset-relative path) ...
    offset: int  # ... and at which byte

    @property
    def status(self) -> str:
        """"passed", "failed" or "unknown"."""
        return "unknown" if self.passed is None else "passed" if self.passed else "failed"


@dataclass(slots=True)
class TraceRow:
    """One trace's rollup, as the reference's `TraceIndexRow` plus our additions."""

    trace_id: str
    span_count: int
    start_time: str
    end_time: str
    has_errors: bool
    service_names: list[str]
    model_names: list[str]
    agent_names: list[str]
    agent_ids: list[str]
    total_input_tokens: int
    total_output_tokens: int
    project_id: str | None
    missing_parent_count: int
    missing_agent_identity_count: int
    project_id_mismatch_count: int
    otel_error_span_count: int
    tool_error_span_count: int
    raw_jsonl_bytes: int
    # halo-live additions
    tool_names: list[str]
    run_ids: list[str]
    complete: bool  # a root span (no parent) has arrived
    last_seen: float  # wall-clock time the latest span of this trace was indexed
    error_span_names: list[str]
    duration_ms: float | None  # end - start, None when a time does not parse
    file: str  # dataset-relative path of the file holding the trace's first span
    outcome: Outcome | None = None  # its latest outcome, None when none was recorded
    reported_cost_usd: float = 0.0  # the sum of its spans' `inference.llm.cost.total`
    model_tokens: dict[str, list[int]] = field(default_factory=dict)  # spans with tokens and no
    # reported cost: {model name ("" for none): [input, output]}, what a price list estimates

    @property
    def in_progress(self) -> bool:
        """True while the root span has not arrived."""
        return not self.complete

    @property
    def outcome_status(self) -> str:
        """"passed", "failed" or "unknown" (no outcome, or one that says neither)."""
        return self.outcome.status if self.outcome is not None else "unknown"


@dataclass(slots=True, frozen=True)
class SpanRef:
    """Where one span lives and the few fields the index keeps about it."""

    file: str  # dataset-relative path
    offset: int
    length: int  # bytes without the trailing newline
    span_id: str
    parent_span_id: str
    name: str
    status_code: str


@dataclass(slots=True)
class IndexFilters:
    """ANDed predicates over indexed fields; None means "no constraint".

    The first seven keep halo-engine 0.3.5's semantics exactly: lists match if
    any listed value is present (an empty list matches nothing), times compare
    as strings (`row.start_time >= start_time_gte`, `row.end_time <= end_time_lte`).
    """

    has_errors: bool | None = None
    model_names: list[str] | None = None
    service_names: list[str] | None = None
    agent_names: list[str] | None = None
    project_id: str | None = None
    start_time_gte: str | None = None
    end_time_lte: str | None = None
    tool_names: list[str] | None = None
    complete: bool | None = None
    min_duration_ms: float | None = None
    run_ids: list[str] | None = None
    outcome: str | None = None  # "passed" | "failed" | "unknown" (no outcome or neither)
    task_ids: list[str] | None = None  # the task id of the latest outcome is any of these
    min_score: float | None = None  # the latest outcome's score is >= this (traces without one never match)
    max_score: float | None = None


@dataclass(slots=True)
class DatasetTotals:
    """Whole-dataset rollup, maintained as spans arrive (no row or span reads)."""

    total_traces: int = 0
    total_spans: int = 0
    earliest_start_time: str = ""
    latest_end_time: str = ""
    service_names: list[str] = field(default_factory=list)
    model_names: list[str] = field(default_factory=list)
    agent_names: list[str] = field(default_factory=list)
    agent_ids: list[str] = field(default_factory=list)
    tool_names: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    error_trace_count: int = 0
    missing_parent_count: int = 0
    missing_agent_identity_count: int = 0
    project_id_mismatch_count: int = 0
    otel_error_span_count: int = 0
    tool_error_span_count: int = 0
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    raw_jsonl_bytes: int = 0
    complete_traces: int = 0
    bad_lines: int = 0
    spans_without_projection: int = 0  # lines lacking inference.* keys (indexed from what they have)
    files: int = 0
    indexed_bytes: int = 0  # bytes consumed across files (complete lines only)
    last_indexed_at: float = 0.0
    outcome_traces: int = 0  # traces with an outcome span (the latest decides pass/fail)
    passed_traces: int = 0
    failed_traces: int = 0
    duplicate_spans: int = 0  # lines repeating a (trace id, span id): indexed once, counted here
    reported_cost_usd: float = 0.0  # the sum of `inference.llm.cost.total` over the spans carrying a number
    model_tokens: dict[str, list[int]] = field(default_factory=dict)  # as TraceRow's, whole dataset
    # (only the unfiltered totals: a `Snapshot.rollup` leaves both empty)

    @property
    def in_progress_traces(self) -> int:
        return self.total_traces - self.complete_traces


@dataclass(slots=True)
class ErrorSignature:
    """Error spans grouped by (span name, status message[:200]), as the reference groups them."""

    span_name: str
    status_message: str
    error_span_count: int
    trace_count: int
    example_trace_ids: list[str]  # the lexicographically smallest three, as the reference picks
    outcome_trace_count: int = 0  # traces hit whose latest outcome passed or failed
    failed_trace_count: int = 0  # ... and failed


@dataclass(slots=True)
class BadLine:
    """A line that was skipped: not JSON, or not a span."""

    file: str
    offset: int
    reason: str


@dataclass(slots=True)
class CatchUpStats:
    """What one `catch_up()` did."""

    files: int = 0
    bytes_read: int = 0
    lines: int = 0
    spans: int = 0
    bad_lines: int = 0
    new_traces: int = 0
    batches: int = 0
    reset: bool = False  # a file was truncated/replaced/removed: the index was rebuilt
    seconds: float = 0.0
    pending_bytes: int = 0  # a partial last line left for the next round
    duplicates: int = 0  # span lines repeating a (trace id, span id) already indexed: skipped
