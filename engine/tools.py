"""The trace tools: one registry for the diagnostic agent and for `halo tool`.

`run_tool(store, name, arguments)` validates the arguments with the tool's
model, runs it, and returns the JSON-ready dict the model reads. A bad
argument, an unknown tool, an unknown trace or span id, or an invalid regex
comes back as `{"error": "..."}` in words the model can act on, never as an
exception: a model that guesses wrong should be told so and try again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from halo_live.engine import models as m
from halo_live.engine.store import ToolError, TraceStore


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what the model sees (name, description, argument schema) and how it runs."""

    name: str
    description: str
    arguments_model: type[BaseModel]
    result_model: type[BaseModel]
    run: Callable[[TraceStore, Any], BaseModel]

    def json_schema(self) -> dict[str, Any]:
        """The arguments' JSON schema (pass through the SDK's strict conversion for strict tools)."""
        return self.arguments_model.model_json_schema()


_MORE_FILTERS = (
    " halo-live filters too: `tool_names`, `run_ids`, `complete` (false = still in progress), "
    "`min_duration_ms`, and the recorded task outcome: `outcome` (passed/failed/unknown), "
    "`task_ids`, `min_score`/`max_score`."
)

_SPECS = [
    ToolSpec(
        name="get_dataset_overview",
        description=(
            "Dataset rollup: counts, services, models, totals, `raw_jsonl_bytes`, and "
            "`sample_trace_ids` (real ids to pass to view/search tools). Call this first "
            "to size the dataset. `error_trace_count`/`filters.has_errors` only reflect "
            "OTel ERROR-status spans. `filters.regex_pattern` is opt-in raw-span "
            "scanning; narrow with indexed filter fields first. Live facts: "
            "`in_progress_trace_count`, `spans_indexed`, `last_span_arrival`. Where task outcomes "
            "were recorded: `outcomes` (pass rate) and `failure_signatures` (signatures ranked by "
            "the failures they explain)." + _MORE_FILTERS
        ),
        arguments_model=m.DatasetOverviewArguments,
        result_model=m.DatasetOverviewResult,
        run=lambda store, a: m.DatasetOverviewResult(result=store.get_overview(a.filters)),
    ),
    ToolSpec(
        name="query_traces",
        description=(
            "Paginated trace summaries; each carries `raw_jsonl_bytes` so you can size "
            "traces before calling `view_trace`. `has_errors` only means at least one "
            "OTel ERROR-status span. Before adding `filters.regex_pattern` (opt-in "
            "raw-span scanning), narrow with indexed filter fields and confirm the "
            "candidate count via `get_dataset_overview`/`count_traces`." + _MORE_FILTERS
        ),
        arguments_model=m.QueryTracesArguments,
        result_model=m.QueryTracesResult,
        run=lambda store, a: m.QueryTracesResult(
            result=store.query_traces(a.filters, a.limit, a.offset)),
    ),
    ToolSpec(
        name="count_traces",
        description=(
            "Count traces matching `filters`. `filters.has_errors` only matches traces "
            "with at least one OTel ERROR-status span. Use to size a candidate set "
            "before adding `filters.regex_pattern` (opt-in raw-span scanning)." + _MORE_FILTERS
        ),
        arguments_model=m.CountTracesArguments,
        result_model=m.CountTracesResult,
        run=lambda store, a: m.CountTracesResult(result=store.count_traces(a.filters)),
    ),
    ToolSpec(
        name="view_trace",
        description=(
            "Return all spans of a trace (per-attribute payloads head-capped ~4KB). "
            "If the response would exceed ~150KB, returns `oversized` summary instead — "
            "switch to `search_trace` + `view_spans`/`search_span`. Use `raw_jsonl_bytes` "
            "from `query_traces` to decide if a trace is small enough."
        ),
        arguments_model=m.ViewTraceArguments,
        result_model=m.ViewTraceResult,
        run=lambda store, a: m.ViewTraceResult(result=store.view_trace(a.trace_id)),
    ),
    ToolSpec(
        name="view_spans",
        description=(
            "Return named spans (up to 200) at a 16KB per-attribute cap (4× `view_trace`). "
            "If the response would exceed ~150KB, returns `oversized` summary — switch to "
            "`search_span` for large individual spans or call with a smaller set."
        ),
        arguments_model=m.ViewSpansArguments,
        result_model=m.ViewTraceResult,
        run=lambda store, a: m.ViewTraceResult(result=store.view_spans(a.trace_id, a.span_ids)),
    ),
    ToolSpec(
        name="search_trace",
        description=(
            "Regex-search a trace (Python regex over raw span JSON). Returns up to "
            "`max_matches` `SpanMatchRecord`s (span metadata + matched text + context) "
            "plus unbounded `match_count` and `has_more`. Follow up with `view_spans` or "
            "`search_span` on the returned `span_id`s."
        ),
        arguments_model=m.SearchTraceArguments,
        result_model=m.SearchTraceResult,
        run=lambda store, a: m.SearchTraceResult(result=store.search_trace(
            a.trace_id, a.regex_pattern, a.context_buffer_chars, a.max_matches)),
    ),
    ToolSpec(
        name="search_span",
        description=(
            "Regex-search inside one span. Same shape as `search_trace`. Use when a "
            "single span itself is too large to read whole (its `raw_jsonl_bytes` is "
            "near/above the response budget, or `view_spans` returned `oversized` "
            "because of it)."
        ),
        arguments_model=m.SearchSpanArguments,
        result_model=m.SearchSpanResult,
        run=lambda store, a: m.SearchSpanResult(result=store.search_span(
            a.trace_id, a.span_id, a.regex_pattern, a.context_buffer_chars, a.max_matches)),
    ),
]

TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in _SPECS}


def open_store(path: str | Path, index_dir: str | Path | None = None) -> TraceStore:
    """Open the dataset at `path` (file, folder of shards, or glob) and catch its index up."""
    return TraceStore.open(path, index_dir)


def describe_validation_error(tool: str, exc: ValidationError) -> str:
    """A ValidationError as one sentence a model can fix its call from."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        given = err.get("input")
        shown = "" if err.get("type") == "missing" else f" (got {json.dumps(given, default=str)[:80]})"
        parts.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return f"invalid arguments for {tool}: " + "; ".join(parts)


def parse_arguments(spec: ToolSpec, arguments: dict | str | None) -> BaseModel:
    """Validate `arguments` (a dict or JSON text) with the tool's model; raises ToolError."""
    if arguments is None or arguments == "":
        arguments = {}
    if isinstance(arguments, (str, bytes)):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError) as exc:
            raise ToolError(f"invalid arguments for {spec.name}: not JSON ({exc})") from exc
    if not isinstance(arguments, dict):
        raise ToolError(f"invalid arguments for {spec.name}: expected a JSON object, "
                        f"got {type(arguments).__name__}")
    try:
        return spec.arguments_model.model_validate(arguments)
    except ValidationError as exc:
        raise ToolError(describe_validation_error(spec.name, exc)) from exc


def execute(store: TraceStore, spec: ToolSpec, parsed: BaseModel) -> dict[str, Any]:
    """Run a validated call and return its JSON-ready result; raises ToolError for a bad request."""
    return json.loads(spec.run(store, parsed).model_dump_json())


def run_tool(store: TraceStore, name: str, arguments: dict | str | None = None) -> dict[str, Any]:
    """Run tool `name` and return its JSON result, or `{"error": "..."}` for any bad request."""
    spec = TOOLS.get(name)
    if spec is None:
        return {"error": f"unknown tool {name!r}; tools: {', '.join(TOOLS)}"}
    try:
        return execute(store, spec, parse_arguments(spec, arguments))
    except ToolError as exc:
        return {"error": str(exc)}
