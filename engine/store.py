"""`TraceStore`: the reference's seven trace queries over a live index.

Every answer starts by catching the index up with the files, then reads one
consistent LMDB snapshot. Overview, count and query are answered from the
index rows; only `regex_pattern` filters and the search tools read span bytes,
and only of the candidate traces. On a file that does not change every answer
equals halo-engine 0.3.5's: same ordering (dataset order), same taxonomy
(first 2,000 error traces, messages cut at 200 characters, top 20 groups with
ties in first-seen order), same budgets (see `halo_live.engine.budget`). An
answer beyond the call's character bound holds fewer items and a cursor
(`halo_live.engine.pages`); the searches get that bound too.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from halo_live.engine import budget, filtering, live, pages, render
# ToolError and compile_regex live in `filtering` (no pydantic there); importers reach them here too
from halo_live.engine.filtering import ToolError, compile_regex  # noqa: F401
from halo_live.engine.models import (
    DatasetOverview,
    ErrorTaxonomyGroup,
    SpanSearchResult,
    TraceCountResult,
    TraceFilters,
    TraceQueryResult,
    TraceSearchResult,
    TraceView,
)
from halo_live.engine.outcomes import outcome_counts, rank_index_signatures, ranked_signatures, signature_lift
from halo_live.indexer.live import DEFAULT_STUCK_AFTER, TaskStates, task_states
from halo_live.indexer.models import IndexFilters

OVERVIEW_SAMPLE_TRACE_IDS = 20
TAXONOMY_MAX_ERROR_TRACES = 2_000
TAXONOMY_MESSAGE_CHARS = 200
TAXONOMY_TOP_GROUPS = 20
TAXONOMY_EXAMPLE_TRACE_IDS = 3
TAXONOMY_CACHE_ENTRIES = 64


_NO_FILTERS = TraceFilters()
_UNION_FIELDS = ("service_names", "model_names", "agent_names", "agent_ids", "tool_names")
_SUM_FIELDS = ("missing_parent_count", "missing_agent_identity_count", "project_id_mismatch_count",
               "otel_error_span_count", "tool_error_span_count", "total_input_tokens",
               "total_output_tokens")


def index_filters(filters: TraceFilters) -> IndexFilters:
    """The indexed part of `filters` (all but `regex_pattern` and `state`); raises `ToolError`."""
    return filtering.index_filters(filters.model_dump())


class TraceStore:
    """The trace queries of one dataset (a file, a folder of shards or a glob)."""

    def __init__(self, index: Any, *, stuck_after: float | None = None) -> None:
        stuck_after = DEFAULT_STUCK_AFTER if stuck_after is None else stuck_after
        if not stuck_after > 0:
            raise ValueError(f"stuck_after must be > 0 seconds, not {stuck_after!r}")
        self._index = index
        self.stuck_after = float(stuck_after)  # seconds without a span start or end: stuck
        # one catch-up at a time per store: LMDB serializes writers anyway, this
        # just avoids two threads of the same process queueing for the same work
        self._catch_up_lock = threading.Lock()
        self._pending_bytes = 0
        # answers memoized for one index state (see `_caches`)
        self._cache_lock = threading.Lock()
        self._cache_state: tuple | None = None
        self._row_cache: dict[str, Any] = {}
        self._taxonomy_cache: dict[tuple[str, ...], list[ErrorTaxonomyGroup]] = {}

    @classmethod
    def open(cls, path: str | Path, index_dir: str | Path | None = None, *,
             stuck_after: float | None = None) -> "TraceStore":
        """Open (or build) the index of `path` and catch it up; `stuck_after` (seconds) is the
        threshold of the `state` filter and the overview's live tasks (None: 300)."""
        store = cls(filtering.open_index(path, index_dir), stuck_after=stuck_after)
        store.refresh()
        return store

    def close(self) -> None:
        """Release the index."""
        self._index.close()

    def __enter__(self) -> "TraceStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Index every complete line written since the last answer."""
        with self._catch_up_lock:
            stats = self._index.catch_up()
            self._pending_bytes = stats.pending_bytes

    def snapshot(self) -> Any:
        """Catch up, then open one consistent read snapshot of the index."""
        self.refresh()
        return self._index.snapshot()

    @property
    def dataset(self) -> Any:
        """The dataset this store answers for (`halo_live.indexer.dataset.Dataset`)."""
        return self._index.dataset

    @property
    def pending_bytes(self) -> int:
        """Bytes on disk the last catch-up left for later (the index's lag)."""
        return self._pending_bytes

    def index_status(self) -> dict[str, Any]:
        """How current the index was at the last catch-up: spans, newest arrival, lag (no catch-up)."""
        with self._index.snapshot() as snap:
            return self._live_facts(snap)

    def task_states(self, snap: Any, now: float | None = None) -> TaskStates:
        """The dataset's open traces now (running / stuck / abandoned), as of `snap`."""
        return task_states(self._index.dataset, snap, now=time.time() if now is None else now,
                           stuck_after=self.stuck_after)

    def _caches(self, snap: Any) -> tuple[dict[str, Any], dict[tuple[str, ...], list[ErrorTaxonomyGroup]]]:
        """The row and taxonomy memos valid for `snap`'s index state; both start empty when it changed.

        Any commit moves `indexed_bytes` or `last_indexed_at`, so a trace that
        gains a span (or an error) is never answered from an older memo.
        """
        t = snap.totals()
        state = (t.indexed_bytes, t.last_indexed_at, t.total_spans, t.bad_lines, t.total_traces)
        with self._cache_lock:
            if state != self._cache_state:
                self._cache_state, self._row_cache, self._taxonomy_cache = state, {}, {}
            return self._row_cache, self._taxonomy_cache

    def _taxonomy(self, snap: Any, error_trace_ids: list[str]) -> list[ErrorTaxonomyGroup]:
        # Memoized like the reference's, per error-trace id set of one index state.
        ids = tuple(error_trace_ids[:TAXONOMY_MAX_ERROR_TRACES])
        _, cache = self._caches(snap)
        cached = cache.get(ids)
        if cached is None:
            if len(cache) >= TAXONOMY_CACHE_ENTRIES:
                cache.clear()
            cached = cache[ids] = error_taxonomy(snap, list(ids))
        return [g.model_copy() for g in cached]

    def _rows(self, snap: Any, ids: list[str]) -> list[Any]:
        """Index rows of `ids`, from memory while the index has not changed.

        Decoding rows is most of a filtered overview's cost; on a quiet dataset
        (a finished benchmark, the agent's usual case) every later call reuses them.
        """
        cache, _ = self._caches(snap)
        missing = [tid for tid in ids if tid not in cache]
        if missing:
            cache.update((row.trace_id, row) for row in snap.rows(missing))
        rows = (cache.get(tid) for tid in ids)
        return [row for row in rows if row is not None]

    def _live_facts(self, snap: Any) -> dict[str, Any]:
        totals = snap.totals()
        facts = {
            "spans_indexed": totals.total_spans,
            "last_span_arrival": render.iso_from_epoch(totals.last_indexed_at),
            "index_lag_bytes": self._pending_bytes,
        }
        if totals.duplicate_spans:
            facts["duplicate_spans"] = totals.duplicate_spans
        return facts

    # --- discovery from the index ------------------------------------------------------

    def _filtered_ids(self, snap: Any, filters: TraceFilters, states: TaskStates | None = None) -> list[str]:
        if filters.state is None:
            return filtering.matching_ids(snap, filters.model_dump())
        ids = live.filter_ids(snap.trace_ids(index_filters(filters)),
                              states or self.task_states(snap), filters.state)
        if filters.regex_pattern is None:
            return ids
        pattern = compile_regex(filters.regex_pattern)
        return [tid for tid in ids if filtering.trace_matches(snap, tid, pattern)]

    def count_traces(self, filters: TraceFilters) -> TraceCountResult:
        """How many traces match `filters`."""
        with self.snapshot() as snap:
            if filters.state is not None:
                states = self.task_states(snap)
                if live.only_state(filters):  # no candidate list needed: the open sets are small
                    return TraceCountResult(total=live.count_by_state(snap.count(None), states, filters.state))
                return TraceCountResult(total=len(self._filtered_ids(snap, filters, states)))
            return TraceCountResult(total=filtering.count(snap, filters.model_dump()))

    def query_traces(self, filters: TraceFilters, limit: int = 50, offset: int = 0,
                     max_chars: int = budget.DEFAULT_BUDGET_CHARS) -> TraceQueryResult:
        """One page of matching traces in dataset order, plus the unsliced total; fewer, with a
        `next_offset`, when `limit` summaries would exceed `max_chars`."""
        with self.snapshot() as snap:
            unwritten: list[Any] = []
            if filters.regex_pattern is None and filters.state is None:
                flt = index_filters(filters)
                total = snap.count(flt)
                page_ids = snap.trace_ids(flt, offset, limit) if offset < total else []
            else:
                states = self.task_states(snap) if filters.state is not None else None
                ids = self._filtered_ids(snap, filters, states)
                if states is not None and filters.state != "complete" and live.only_state(filters):
                    unwritten = states.unindexed(filters.state)
                total, page_ids = len(ids) + len(unwritten), ids[offset:offset + limit]
                unwritten = unwritten[max(0, offset - len(ids)):max(0, offset + limit - len(ids))]
            summaries = [render.summary(r) for r in snap.rows(page_ids)]
            summaries += [live.unwritten_summary(t) for t in unwritten]
            result = TraceQueryResult(traces=summaries, total=total)
        return pages.query_page(result, offset, max_chars)

    def get_overview(self, filters: TraceFilters) -> DatasetOverview:
        """Rollup of the matching traces plus live facts about the index."""
        with self.snapshot() as snap:
            return self.overview_in(snap, filters)

    def overview_in(self, snap: Any, filters: TraceFilters) -> DatasetOverview:
        """`get_overview` over a snapshot the caller holds (a report reads more from the same one)."""
        live_facts = self._live_facts(snap)
        states = self.task_states(snap)
        if filters == _NO_FILTERS:
            overview = _whole_dataset_overview(snap, live_facts, self._taxonomy)
            overview.live_tasks = live.live_tasks(states, overview.total_traces, None, filters)
            return overview
        if filters.regex_pattern is None and filters.state is None:
            flt = index_filters(filters)
            t = snap.rollup(flt)  # a filter on one value: its rollup, no row reads
            if t is not None and t.total_traces:
                open_ids = snap.among((o.trace_id for o in states.traces.values() if o.indexed), flt)
                live_facts["live_tasks"] = live.live_tasks(states, t.total_traces, open_ids, filters)
                return self._rollup_overview(snap, flt, t, live_facts)
        ids = self._filtered_ids(snap, filters, states)
        rows = self._rows(snap, ids)
        live_facts["live_tasks"] = live.live_tasks(states, len(rows), set(ids), filters)
        if not rows:
            return DatasetOverview(
                total_traces=0, total_spans=0, earliest_start_time="", latest_end_time="",
                service_names=[], model_names=[], agent_names=[], agent_ids=[],
                error_trace_count=0, total_input_tokens=0, total_output_tokens=0,
                raw_jsonl_bytes=0, in_progress_trace_count=0, **live_facts,
            )
        union: dict[str, set[str]] = {key: set() for key in _UNION_FIELDS}
        for row in rows:
            for key, values in union.items():
                values.update(getattr(row, key))
        sums = {key: sum(getattr(r, key) for r in rows) for key in _SUM_FIELDS}
        return DatasetOverview(
            total_traces=len(rows),
            total_spans=sum(r.span_count for r in rows),
            earliest_start_time=min(r.start_time for r in rows),
            latest_end_time=max(r.end_time for r in rows),
            **{key: sorted(values) for key, values in union.items()},
            error_trace_count=sum(1 for r in rows if r.has_errors),
            error_taxonomy=self._taxonomy(snap, [r.trace_id for r in rows if r.has_errors]),
            raw_jsonl_bytes=sum(r.raw_jsonl_bytes for r in rows),
            sample_trace_ids=ids[:OVERVIEW_SAMPLE_TRACE_IDS],
            in_progress_trace_count=sum(1 for r in rows if not r.complete),
            run_ids=list(dict.fromkeys(run for r in rows for run in r.run_ids)),
            **sums,
            **live_facts,
            **_outcome_fields(snap, rows),
        )

    def _rollup_overview(self, snap: Any, flt: IndexFilters, t: Any, live_facts: dict[str, Any]) -> DatasetOverview:
        """A filtered overview from the rollup the index keeps for the filter's value: the
        same answer as from its rows (the taxonomy reads its first 2,000 error traces)."""
        errors = IndexFilters(**{**dataclasses.asdict(flt), "has_errors": True})
        error_ids = snap.trace_ids(errors, 0, TAXONOMY_MAX_ERROR_TRACES) if t.error_trace_count else []
        fields: dict[str, Any] = {}
        if t.outcome_traces:
            silent = 0 if flt.has_errors else snap.count(
                IndexFilters(**{**dataclasses.asdict(flt), "outcome": "failed", "has_errors": False}))
            fields = _outcome_summary(snap, t.total_traces, t.passed_traces, t.failed_traces, silent,
                                      self._rows(snap, error_ids))
        return DatasetOverview(
            total_traces=t.total_traces, total_spans=t.total_spans,
            earliest_start_time=t.earliest_start_time, latest_end_time=t.latest_end_time,
            **{key: list(getattr(t, key)) for key in _UNION_FIELDS},
            error_trace_count=t.error_trace_count,
            error_taxonomy=self._taxonomy(snap, error_ids),
            raw_jsonl_bytes=t.raw_jsonl_bytes,
            sample_trace_ids=snap.trace_ids(flt, 0, OVERVIEW_SAMPLE_TRACE_IDS),
            in_progress_trace_count=t.total_traces - t.complete_traces,
            run_ids=list(t.run_ids),
            **{key: getattr(t, key) for key in _SUM_FIELDS},
            **live_facts,
            **fields,
        )

    # --- reading spans ---------------------------------------------------------------------

    def view_trace(self, trace_id: str, offset: int = 0,
                   max_chars: int = budget.DEFAULT_BUDGET_CHARS) -> TraceView:
        """Every span of a trace, attributes capped at ~4 KB; a summary instead above 150 KB;
        from span `offset` on, as many as fit in `max_chars`."""
        with self.snapshot() as snap:  # the lines are read (lazily) while the snapshot is open
            return self._view(trace_id, snap.span_lines(self._known(snap, trace_id)), offset, max_chars,
                              tool="view_trace")

    def view_spans(self, trace_id: str, span_ids: list[str], offset: int = 0,
                   max_chars: int = budget.DEFAULT_BUDGET_CHARS) -> TraceView:
        """The named spans of a trace (unknown ids skipped), capped at ~16 KB per attribute."""
        with self.snapshot() as snap:
            refs = snap.iter_spans(self._known(snap, trace_id))
            wanted = set(span_ids)
            if not wanted:
                return TraceView(trace_id=trace_id, spans=[])
            lines = (snap.read_span(ref) for ref in refs if ref.span_id in wanted)
            return self._view(trace_id, lines, offset, max_chars, tool="view_spans")

    @staticmethod
    def _view(trace_id: str, lines: Iterable[bytes], offset: int, max_chars: int, *, tool: str) -> TraceView:
        """The view of `lines`, one span parsed at a time (see `render.view`), paged to `max_chars`."""
        surgical = tool == "view_spans"
        cap = budget.SURGICAL_ATTR_CAP_CHARS if surgical else budget.DISCOVERY_ATTR_CAP_CHARS
        limit = budget.VIEW_SPANS_BUDGET_BYTES if surgical else budget.VIEW_TRACE_BUDGET_BYTES
        view, line = render.view(trace_id, lines, cap, limit, for_view_spans=surgical, keep=offset)
        return pages.view_page(view, offset, max_chars, recap=lambda c: budget.capped_span(line, c),
                               cap=cap, tool=tool)

    def search_trace(self, trace_id: str, regex_pattern: str, context_buffer_chars: int = 100,
                     max_matches: int = 50, offset: int = 0,
                     max_chars: int = budget.DEFAULT_BUDGET_CHARS) -> TraceSearchResult:
        """Regex matches over every span's raw JSON, from match `offset` on; the count stays
        exact past the cap, and the answer within `max_chars`."""
        pattern = compile_regex(regex_pattern)
        with self.snapshot() as snap:
            lines = snap.span_lines(self._known(snap, trace_id))
            records, total = render.search(trace_id, enumerate(lines), pattern, context_buffer_chars,
                                           max_matches, offset)
        result = TraceSearchResult(trace_id=trace_id, match_count=total, returned_match_count=len(records),
                                   has_more=total > offset + len(records), matches=records)
        return pages.search_page(result, offset, max_chars, tool="search_trace")

    def search_span(self, trace_id: str, span_id: str, regex_pattern: str,
                    context_buffer_chars: int = 100, max_matches: int = 50, offset: int = 0,
                    max_chars: int = budget.DEFAULT_BUDGET_CHARS) -> SpanSearchResult:
        """Regex matches inside one span's raw JSON (as `search_trace`)."""
        pattern = compile_regex(regex_pattern)
        with self.snapshot() as snap:
            refs = snap.iter_spans(self._known(snap, trace_id))
            found = next(((i, ref) for i, ref in enumerate(refs) if ref.span_id == span_id), None)
            if found is None:
                raise ToolError(f"span_id={span_id!r} not found in trace_id={trace_id!r}")
            index, ref = found
            records, total = render.search(trace_id, [(index, snap.read_span(ref))], pattern,
                                           context_buffer_chars, max_matches, offset)
        result = SpanSearchResult(trace_id=trace_id, span_id=span_id, match_count=total,
                                  returned_match_count=len(records), has_more=total > offset + len(records),
                                  matches=records)
        return pages.search_page(result, offset, max_chars, tool="search_span")

    def trace_rows(self, filters: TraceFilters, *, offset: int = 0, limit: int | None = None) -> list[Any]:
        """The index rollups (`TraceRow`) of the matching traces, in dataset order: `run_code`'s batch read."""
        with self.snapshot() as snap:
            if filters.regex_pattern is None and filters.state is None:
                ids = snap.trace_ids(index_filters(filters), offset, limit)
            else:
                ids = self._filtered_ids(snap, filters)
                ids = ids[offset:] if limit is None else ids[offset:offset + limit]
            return self._rows(snap, ids)

    @staticmethod
    def _known(snap: Any, trace_id: str) -> str:
        if snap.trace(trace_id) is None:
            raise ToolError(f"unknown trace_id {trace_id!r}: use ids from get_dataset_overview "
                            "(sample_trace_ids) or query_traces")
        return trace_id


# --- pure helpers over rows and lines ----------------------------------------------------


def group_error_spans(snap: Any, trace_ids: Iterable[str]
                      ) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], set[str]]]:
    """The ERROR spans of `trace_ids` by (span name, message head): span counts and traces hit.

    Keys stay in first-seen order (trace by trace, spans in file order), which
    is how the reference's `Counter.most_common` breaks ties.
    """
    span_counts: Counter[tuple[str, str]] = Counter()
    traces: dict[tuple[str, str], set[str]] = {}
    for trace_id in trace_ids:
        for name, message in snap.error_spans(trace_id):
            key = (name, (message or "")[:TAXONOMY_MESSAGE_CHARS])
            span_counts[key] += 1
            traces.setdefault(key, set()).add(trace_id)
    return span_counts, traces


def error_taxonomy(snap: Any, error_trace_ids: list[str]) -> list[ErrorTaxonomyGroup]:
    """The overview's top error signatures, over the first 2,000 error traces."""
    span_counts, traces = group_error_spans(snap, error_trace_ids[:TAXONOMY_MAX_ERROR_TRACES])
    return [
        ErrorTaxonomyGroup(span_name=name, status_message=message, error_span_count=count,
                           trace_count=len(traces[(name, message)]),
                           example_trace_ids=sorted(traces[(name, message)])[:TAXONOMY_EXAMPLE_TRACE_IDS])
        for (name, message), count in span_counts.most_common(TAXONOMY_TOP_GROUPS)
    ]


def _whole_dataset_overview(snap: Any, live: dict[str, Any], taxonomy) -> DatasetOverview:
    """The unfiltered overview from the maintained totals: no per-trace row reads."""
    t = snap.totals()
    error_ids = snap.trace_ids(IndexFilters(has_errors=True), 0, TAXONOMY_MAX_ERROR_TRACES)
    return DatasetOverview(
        total_traces=t.total_traces, total_spans=t.total_spans,
        earliest_start_time=t.earliest_start_time if t.total_traces else "",
        latest_end_time=t.latest_end_time if t.total_traces else "",
        **{key: sorted(getattr(t, key)) for key in _UNION_FIELDS},
        error_trace_count=t.error_trace_count,
        error_taxonomy=taxonomy(snap, error_ids),
        raw_jsonl_bytes=t.raw_jsonl_bytes,
        sample_trace_ids=snap.trace_ids(None, 0, OVERVIEW_SAMPLE_TRACE_IDS),
        in_progress_trace_count=t.in_progress_traces,
        run_ids=list(t.run_ids),
        **{key: getattr(t, key) for key in _SUM_FIELDS},
        **live,
        **_dataset_outcome_fields(snap, t),
    )


# --- outcomes in the overview (our additions; the reference's fields stay as they are) -----


def _dataset_outcome_fields(snap: Any, t: Any) -> dict[str, Any]:
    """`outcomes` and `failure_signatures` of the whole dataset, from the index's counts."""
    if not t.outcome_traces:
        return {}
    silent = snap.count(IndexFilters(outcome="failed", has_errors=False))
    fields: dict[str, Any] = {"outcomes": outcome_counts(t.total_traces, t.passed_traces, t.failed_traces, silent)}
    if t.passed_traces + t.failed_traces:
        pairs = rank_index_signatures(snap.error_signatures(), t.passed_traces, t.failed_traces)
        fields["failure_signatures"] = ranked_signatures(
            [(g.span_name, g.status_message, g.trace_count, g.error_span_count, lift, list(g.example_trace_ids))
             for g, lift in pairs], TAXONOMY_TOP_GROUPS)
    return fields


def _outcome_fields(snap: Any, rows: list[Any]) -> dict[str, Any]:
    """`outcomes` and `failure_signatures` of a filtered overview, from its rows (signatures
    over its first 2,000 error traces, as the taxonomy)."""
    if all(r.outcome is None for r in rows):
        return {}
    known = {r.trace_id: r.outcome.passed for r in rows if r.outcome is not None and r.outcome.passed is not None}
    failed = sum(1 for passed in known.values() if not passed)
    silent = sum(1 for r in rows if known.get(r.trace_id) is False and not r.has_errors)
    error_rows = [r for r in rows if r.has_errors][:TAXONOMY_MAX_ERROR_TRACES]
    return _outcome_summary(snap, len(rows), len(known) - failed, failed, silent, error_rows)


def _outcome_summary(snap: Any, total: int, passed: int, failed: int, silent: int,
                     error_rows: list[Any]) -> dict[str, Any]:
    """`outcomes`, and `failure_signatures` over `error_rows` (the first 2,000 error traces),
    of traces of which some have an outcome."""
    fields: dict[str, Any] = {"outcomes": outcome_counts(total, passed, failed, silent)}
    if passed + failed:
        known = {r.trace_id: r.outcome.passed for r in error_rows
                 if r.outcome is not None and r.outcome.passed is not None}
        error_ids = [r.trace_id for r in error_rows]
        span_counts, traces = group_error_spans(snap, error_ids)
        entries = []
        for (name, message), count in span_counts.items():
            hit = traces[(name, message)]
            hit_known = [tid for tid in hit if tid in known]
            hit_failed = sorted(tid for tid in hit_known if known[tid] is False)
            examples = (hit_failed + sorted(hit.difference(hit_failed)))[:TAXONOMY_EXAMPLE_TRACE_IDS]
            entries.append((name, message, len(hit), count,
                            signature_lift(len(hit_known), len(hit_failed), passed + failed, failed), examples))
        fields["failure_signatures"] = ranked_signatures(entries, TAXONOMY_TOP_GROUPS)
    return fields
