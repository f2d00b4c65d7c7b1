"""The `state` filter and the overview's live facts, over `halo_live.indexer.live`'s open traces.

The open traces are few (only tasks in flight), so a state filter is the
index's ordinary candidates intersected with (running, stuck, abandoned) or
minus (complete) those sets, here, apart from the index's query internals.
Open traces none of whose spans is written yet have no index row: they count
in their state (and are listed by `query_traces`) only when `state` is the
one filter given, since nothing else is known of them.
"""

from __future__ import annotations

from halo_live.engine import render
from halo_live.engine.models import LiveTasks, OpenSpanInfo, OpenTask, TraceFilters, TraceSummary
from halo_live.indexer.live import OPEN_STATES, OpenTrace, TaskStates

OPEN_TASKS_SHOWN = 20  # the overview lists at most this many open tasks (the worst first)
_STATE_ORDER = {"abandoned": 0, "stuck": 1, "running": 2}


def only_state(filters: TraceFilters) -> bool:
    """True when `state` is the only filter set (then unwritten open traces match too)."""
    return filters.state is not None and filters.model_dump(exclude_none=True).keys() == {"state"}


def filter_ids(ids: list[str], states: TaskStates, state: str) -> list[str]:
    """`ids` (dataset order) kept to those in `state`."""
    if state == "complete":
        open_ids = states.traces
        return [tid for tid in ids if tid not in open_ids]
    wanted = states.ids(state)
    return [tid for tid in ids if tid in wanted]


def count_by_state(total_indexed: int, states: TaskStates, state: str) -> int:
    """Traces in `state` among all (`total_indexed` indexed ones, plus the unwritten open ones)."""
    if state == "complete":
        return total_indexed - sum(1 for t in states.traces.values() if t.indexed)
    return states.count(state)


def seconds(value: float | None) -> str:
    """95 s, 12 min, 3.2 h: a duration as the view says it."""
    if value is None:
        return "?"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def doing(trace: OpenTrace) -> tuple[str, float | None]:
    """What an open task is doing, in words, and since when (epoch s): ("LLM call to gpt-4.1", t)."""
    span = trace.current_span
    if span is None:
        return "last span ended", trace.last_activity
    label = span.name.split(".", 1)[1] if "." in span.name else span.name
    if span.kind == "LLM":
        return f"LLM call to {span.model or label or 'a model'}", span.started_at
    if span.kind == "TOOL":
        return f"tool `{label}`", span.started_at
    if span.kind == "AGENT":
        return f"agent `{span.agent or label}`", span.started_at
    return f"`{span.name}`", span.started_at


def open_task(trace: OpenTrace) -> OpenTask:
    """An open trace as the tools show it: absolute times, so a static file answers the same twice."""
    span = trace.current_span
    iso = render.iso_from_epoch
    info = None if span is None else OpenSpanInfo(
        name=span.name, kind=span.kind or "SPAN", agent=span.agent, model=span.model,
        started_at=iso(span.started_at) if span.started_at else None)
    what, since = doing(trace)
    return OpenTask(trace_id=trace.trace_id, state=trace.state, doing=what, since=iso(since) if since else None,
                    last_activity=iso(trace.last_activity), current_span=info, why=trace.why,
                    pid=trace.pid, host=trace.host, written=trace.indexed)


def worst_first(traces: list[OpenTrace]) -> list[OpenTrace]:
    """Abandoned, then stuck, then running; the longest silent first in each."""
    return sorted(traces, key=lambda t: (_STATE_ORDER[t.state], -t.silent_for, t.trace_id))


def matching(states: TaskStates, ids: set[str] | None, filters: TraceFilters) -> list[OpenTrace]:
    """The open traces among `ids` (already filtered, state included; None: every trace),
    plus the unwritten ones when nothing but `state` (or nothing) filters them."""
    with_unwritten = ids is None or only_state(filters)
    found = []
    for t in states.traces.values():
        if t.indexed:
            if ids is None or t.trace_id in ids:
                found.append(t)
        elif with_unwritten and filters.state in (None, t.state):
            found.append(t)
    return found


def live_tasks(states: TaskStates, total_traces: int, ids: set[str] | None, filters: TraceFilters) -> LiveTasks:
    """The overview's `live_tasks` for `total_traces` matching indexed traces (`ids`; None: all)."""
    chosen = matching(states, ids, filters)
    counts = {state: sum(1 for t in chosen if t.state == state) for state in OPEN_STATES}
    open_written = sum(1 for t in chosen if t.indexed)
    return LiveTasks(complete=max(0, total_traces - open_written), **counts,
                     unwritten=len(chosen) - open_written, stuck_after_seconds=states.stuck_after,
                     open_tasks=[open_task(t) for t in worst_first(chosen)[:OPEN_TASKS_SHOWN]])


def unwritten_summary(trace: OpenTrace) -> TraceSummary:
    """A trace none of whose spans is written yet, as `query_traces` lists it (from its sidecar)."""
    start = render.iso_from_epoch(trace.started_at) if trace.started_at else ""
    models = sorted({s.model for s in trace.spans if s.model})
    agents = sorted({s.agent for s in trace.spans if s.agent})
    return TraceSummary(trace_id=trace.trace_id, span_count=0, start_time=start or "", end_time="",
                        has_errors=False, service_names=[trace.service] if trace.service else [],
                        model_names=models, total_input_tokens=0, total_output_tokens=0,
                        agent_names=agents, raw_jsonl_bytes=0, complete=False)
