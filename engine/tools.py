"""The trace tools: one registry for the diagnostic agent, `halo tool` and `halo mcp`.

`run_tool(store, name, arguments, budget)` validates the arguments with the
tool's model, runs it, and returns the JSON-ready dict the model reads, within
`budget` characters of compact JSON (see `halo_live.engine.budget`). A bad
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

from halo_live.engine import budget as b
from halo_live.engine import lite
from halo_live.engine import models as m
from halo_live.engine import sandbox
from halo_live.engine.store import ToolError, TraceStore


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what the model sees (name, title, description, argument schema) and how it runs.

    `run(store, arguments, max_chars)` returns the `result` of the answer (a model
    or JSON-ready data) within `max_chars` characters where it pages itself;
    `paged` names the list its cursor walks, which a budget cut never shortens.
    Every tool only reads.
    """

    name: str
    title: str
    description: str
    arguments_model: type[BaseModel]
    run: Callable[[TraceStore, Any, int], BaseModel | dict[str, Any]]
    result_model: type[BaseModel] | None = None
    paged: str | None = None
    # Runs caller-supplied code (`run_code`): a surface offers it only when its user allows
    # it (`halo tool --allow-code`, `halo mcp --allow-code`); the diagnostic agent has it by default.
    needs_permission: bool = False

    def json_schema(self) -> dict[str, Any]:
        """The arguments' JSON schema (pass through the SDK's strict conversion for strict tools)."""
        return self.arguments_model.model_json_schema()


_MORE_FILTERS = (
    " halo-live filters too: `tool_names`, `run_ids`, `complete` (false = still in progress), "
    "`min_duration_ms`, and the recorded task outcome: `outcome` (passed/failed/unknown), "
    "`task_ids`, `min_score`/`max_score`, and `state` (complete/running/stuck/abandoned: the tasks in "
    "flight now, stuck after 300 s without a span starting or ending unless the user set --stuck-after)."
)
_PAGED = (
    " An answer over the call's budget holds fewer items plus `next_offset` and `remaining_count`: "
    "call again with `offset` = `next_offset` for the rest."
)

_SPECS = [
    ToolSpec(
        name="get_dataset_overview",
        title="Dataset overview",
        description=(
            "Dataset rollup: counts, services, models, totals, `raw_jsonl_bytes`, and "
            "`sample_trace_ids` (real ids to pass to view/search tools). Call this first "
            "to size the dataset. `error_trace_count`/`filters.has_errors` only reflect "
            "OTel ERROR-status spans. `filters.regex_pattern` is opt-in raw-span "
            "scanning; narrow with indexed filter fields first. Live facts: "
            "`in_progress_trace_count`, `spans_indexed`, `last_span_arrival`, `index_lag_bytes`; "
            "`run_ids` for `filters.run_ids` and `compare_runs`. Where task outcomes were recorded: "
            "`outcomes` (pass rate) and `failure_signatures` (signatures ranked by the failures "
            "they explain). `live_tasks`: running, stuck and abandoned tasks now, each with what it is "
            "doing (its open span)." + _MORE_FILTERS
        ),
        arguments_model=m.DatasetOverviewArguments,
        result_model=m.DatasetOverviewResult,
        run=lambda store, a, max_chars: store.get_overview(a.filters),
    ),
    ToolSpec(
        name="query_traces",
        title="Query traces",
        description=(
            "Paginated trace summaries; each carries `raw_jsonl_bytes` so you can size "
            "traces before calling `view_trace`. `has_errors` only means at least one "
            "OTel ERROR-status span. Before adding `filters.regex_pattern` (opt-in "
            "raw-span scanning), narrow with indexed filter fields and confirm the "
            "candidate count via `get_dataset_overview`/`count_traces`." + _MORE_FILTERS + _PAGED
        ),
        arguments_model=m.QueryTracesArguments,
        result_model=m.QueryTracesResult,
        run=lambda store, a, max_chars: store.query_traces(a.filters, a.limit, a.offset, max_chars),
        paged="traces",
    ),
    ToolSpec(
        name="count_traces",
        title="Count traces",
        description=(
            "Count traces matching `filters`. `filters.has_errors` only matches traces "
            "with at least one OTel ERROR-status span. Use to size a candidate set "
            "before adding `filters.regex_pattern` (opt-in raw-span scanning)." + _MORE_FILTERS
        ),
        arguments_model=m.CountTracesArguments,
        result_model=m.CountTracesResult,
        run=lambda store, a, max_chars: store.count_traces(a.filters),
    ),
    ToolSpec(
        name="view_trace",
        title="View a trace",
        description=(
            "Return all spans of a trace (per-attribute payloads head-capped ~4KB). "
            "If the response would exceed ~150KB, returns `oversized` summary instead — "
            "switch to `search_trace` + `view_spans`/`search_span`. Use `raw_jsonl_bytes` "
            "from `query_traces` to decide if a trace is small enough." + _PAGED
        ),
        arguments_model=m.ViewTraceArguments,
        result_model=m.ViewTraceResult,
        run=lambda store, a, max_chars: store.view_trace(a.trace_id, a.offset, max_chars),
        paged="spans",
    ),
    ToolSpec(
        name="view_spans",
        title="View spans",
        description=(
            "Return named spans (up to 200) at a 16KB per-attribute cap (4× `view_trace`). "
            "If the response would exceed ~150KB, returns `oversized` summary — switch to "
            "`search_span` for large individual spans or call with a smaller set." + _PAGED
        ),
        arguments_model=m.ViewSpansArguments,
        result_model=m.ViewTraceResult,
        run=lambda store, a, max_chars: store.view_spans(a.trace_id, a.span_ids, a.offset, max_chars),
        paged="spans",
    ),
    ToolSpec(
        name="search_trace",
        title="Search a trace",
        description=(
            "Regex-search a trace (Python regex over raw span JSON). Returns up to "
            "`max_matches` `SpanMatchRecord`s (span metadata + matched text + context) "
            "plus unbounded `match_count` and `has_more`. Follow up with `view_spans` or "
            "`search_span` on the returned `span_id`s. With `has_more`, pass `offset` = `offset` + "
            "`returned_match_count` for the next matches." + _PAGED
        ),
        arguments_model=m.SearchTraceArguments,
        result_model=m.SearchTraceResult,
        run=lambda store, a, max_chars: store.search_trace(
            a.trace_id, a.regex_pattern, a.context_buffer_chars, a.max_matches, a.offset, max_chars),
        paged="matches",
    ),
    ToolSpec(
        name="search_span",
        title="Search a span",
        description=(
            "Regex-search inside one span. Same shape as `search_trace`. Use when a "
            "single span itself is too large to read whole (its `raw_jsonl_bytes` is "
            "near/above the response budget, or `view_spans` returned `oversized` "
            "because of it)." + _PAGED
        ),
        arguments_model=m.SearchSpanArguments,
        result_model=m.SearchSpanResult,
        run=lambda store, a, max_chars: store.search_span(
            a.trace_id, a.span_id, a.regex_pattern, a.context_buffer_chars, a.max_matches, a.offset,
            max_chars),
        paged="matches",
    ),
    ToolSpec(
        name="get_failure_report",
        title="Failure report",
        description=(
            "The deterministic failure report, in one call: error signatures ranked by traces hit, "
            "each with an example trace id and its likely cause; per-tool error rates; the slowest "
            "and the most token-hungry traces; traces still in progress. Use it right after "
            "`get_dataset_overview` to pick what to investigate, then open the example traces with "
            "`search_trace`/`view_trace`."
        ),
        arguments_model=m.FailureReportArguments,
        run=lambda store, a, max_chars: _report(store, a.top),
    ),
    ToolSpec(
        name="compare_runs",
        title="Compare two runs",
        description=(
            "What a harness change did: two runs of this dataset (ids from `get_dataset_overview`'s "
            "`run_ids`) side by side: score (from the benchmark's score file, when it names the run), "
            "share of traces with errors, tokens and latency per trace, and every error signature "
            "before/after marked new, vanished, up, down or same. Use it after re-running a changed "
            "harness into the same file or folder with a new run id."
        ),
        arguments_model=m.CompareRunsArguments,
        run=lambda store, a, max_chars: _compare(store, a.run_before, a.run_after, a.top),
    ),
]


def _run_code(store: TraceStore, args: sandbox.RunCodeArguments) -> sandbox.RunCodeResult:
    """`run_code`: the sandbox gets every other tool as a function, answered by `run_tool`."""
    fields = {spec.name: list(spec.arguments_model.model_fields) for spec in _SPECS}
    run = sandbox.run_code(store, args.code, call_tool=lambda name, a: run_tool(store, name, a),
                           tool_fields=fields)
    return sandbox.RunCodeResult(result=run)


def _report(store: TraceStore, top: int) -> dict[str, Any]:
    from halo_live.engine.report import build_report  # the agent and `halo tool` mostly never need it

    return build_report(store, top)


def _compare(store: TraceStore, run_before: str, run_after: str, top: int) -> dict[str, Any]:
    from halo_live.engine.compare import CompareError, compare_runs

    try:
        return compare_runs(store, run_before, run_after, top)
    except CompareError as exc:
        raise ToolError(str(exc)) from exc


TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in _SPECS}
TOOLS[sandbox.RUN_CODE] = ToolSpec(
    name=sandbox.RUN_CODE,
    title="Run Python over the traces",
    description=sandbox.DESCRIPTION,
    arguments_model=sandbox.RunCodeArguments,
    result_model=sandbox.RunCodeResult,
    run=lambda store, a, max_chars: _run_code(store, a).result,
    needs_permission=True,
)


def open_store(path: str | Path, index_dir: str | Path | None = None, *,
               stuck_after: float | None = None) -> TraceStore:
    """Open the dataset at `path` (file, folder of shards, or glob) and catch its index up;
    `stuck_after` (seconds, default 300) judges the `state` filter and the live tasks."""
    return TraceStore.open(path, index_dir, stuck_after=stuck_after)


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


def execute(store: TraceStore, spec: ToolSpec, parsed: BaseModel,
            budget: int = b.DEFAULT_BUDGET_CHARS) -> dict[str, Any]:
    """Run a validated call and return its JSON-ready answer, `{"result": ...}`, within `budget`
    characters of compact JSON; raises ToolError for a bad request."""
    result = spec.run(store, parsed, budget - lite.ENVELOPE_CHARS)
    if isinstance(result, BaseModel):
        result = json.loads(result.model_dump_json())
    return lite.envelope(spec.name, result, budget, spec.paged)


def run_tool(store: TraceStore, name: str, arguments: dict | str | None = None,
             budget: int = b.DEFAULT_BUDGET_CHARS, *, allow_code: bool = False) -> dict[str, Any]:
    """Run tool `name` and return its JSON result, or `{"error": "..."}` for any bad request.

    A tool that `needs_permission` (`run_code`) answers only with `allow_code=True`.
    """
    spec = TOOLS.get(name)
    if spec is None:
        return {"error": f"unknown tool {name!r}; tools: {', '.join(TOOLS)}"}
    if spec.needs_permission and not allow_code:
        return {"error": f"{name} runs code and is off unless allowed (halo tool {name} ... --allow-code)"}
    try:
        return execute(store, spec, parse_arguments(spec, arguments), budget)
    except ToolError as exc:
        return {"error": str(exc)}
