"""What halo-live's tools add to the reference's: filters, live facts, readable errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from halo_live.engine.tools import TOOLS, execute, open_store, run_tool
from halo_live.exporter.canonical import ns_from_iso
from tests import _tools_helpers as gen


@pytest.fixture
def lines() -> list[bytes]:
    return gen.generate(24, seed=21, incomplete_every=5, run_id="run-1") + \
        gen.generate(6, seed=22, first=100, run_id="run-2")


@pytest.fixture
def store(tmp_path: Path, lines):
    with open_store(gen.write(tmp_path / "t.jsonl", lines)) as s:
        yield s


def _traces(lines: list[bytes]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for line in lines:
        span = json.loads(line)
        out.setdefault(span["trace_id"], []).append(span)
    return out


def _ids(store, filters: dict) -> set[str]:
    got = run_tool(store, "query_traces", {"filters": filters, "limit": 500})["result"]
    assert got["total"] == len(got["traces"])
    assert run_tool(store, "count_traces", {"filters": filters})["result"]["total"] == got["total"]
    return {t["trace_id"] for t in got["traces"]}


def test_tool_names_filter(store, lines):
    traces = _traces(lines)
    want = {tid for tid, spans in traces.items()
            if any(s["attributes"].get("tool.name") == "submit" for s in spans)}
    assert want and _ids(store, {"tool_names": ["submit"]}) == want
    assert _ids(store, {"tool_names": []}) == set()


def test_complete_filter_and_in_progress_count(store, lines):
    traces = _traces(lines)
    open_ = {tid for tid, spans in traces.items() if all(s["parent_span_id"] for s in spans)}
    assert open_ and _ids(store, {"complete": False}) == open_
    assert _ids(store, {"complete": True}) == set(traces) - open_
    overview = run_tool(store, "get_dataset_overview", {})["result"]
    assert overview["in_progress_trace_count"] == len(open_)
    assert overview["spans_indexed"] == len(lines)
    assert overview["last_span_arrival"] and overview["index_lag_bytes"] == 0
    filtered = run_tool(store, "get_dataset_overview", {"filters": {"complete": False}})["result"]
    assert filtered["total_traces"] == filtered["in_progress_trace_count"] == len(open_)


def test_min_duration_and_run_ids_filters(store, lines):
    traces = _traces(lines)

    def duration_ms(spans):
        start = min(s["start_time"] for s in spans)
        end = max(s["end_time"] for s in spans)
        return (ns_from_iso(end) - ns_from_iso(start)) / 1e6

    cut = sorted(duration_ms(s) for s in traces.values())[len(traces) // 2]
    want = {tid for tid, spans in traces.items() if duration_ms(spans) >= cut}
    assert _ids(store, {"min_duration_ms": cut}) == want
    run2 = {tid for tid, spans in traces.items()
            if spans[0]["attributes"].get("inference.run_id") == "run-2"}
    assert len(run2) == 6
    assert _ids(store, {"run_ids": ["run-2"]}) == run2
    assert _ids(store, {"run_ids": ["run-1", "run-2"]}) == set(traces)


def test_summaries_carry_tool_names_and_completeness(store, lines):
    traces = _traces(lines)
    for summary in run_tool(store, "query_traces", {"limit": 500})["result"]["traces"]:
        spans = traces[summary["trace_id"]]
        assert summary["complete"] == any(not s["parent_span_id"] for s in spans)
        assert summary["tool_names"] == sorted({s["attributes"]["tool.name"] for s in spans
                                                if "tool.name" in s["attributes"]})


@pytest.mark.parametrize("tool, args, words", [
    ("view_trace", {"trace_id": "nope"}, "unknown trace_id 'nope'"),
    ("view_spans", {"trace_id": "nope", "span_ids": ["a"]}, "unknown trace_id"),
    ("search_trace", {"trace_id": "nope", "regex_pattern": "x"}, "unknown trace_id"),
    ("search_trace", {"trace_id": "nope", "regex_pattern": "[unclosed"}, "Invalid regex pattern '[unclosed'"),
    ("count_traces", {"filters": {"regex_pattern": "(?P<"}}, "Invalid regex pattern"),
    ("count_traces", {"filters": {"regex_pattern": "(" * 2000 + ")" * 2000}}, "too deeply nested"),
    ("count_traces", "[" * 100_000, "not JSON"),
    ("query_traces", {"limit": 501}, "limit: Input should be less than or equal to 500 (got 501)"),
    ("query_traces", {"filters": {"has_error": True}}, "filters.has_error: Extra inputs are not permitted"),
    ("view_trace", {}, "trace_id: Field required"),
    ("view_trace", "not json", "not JSON"),
    ("view_trace", "[1]", "expected a JSON object"),
    ("get_dataset_overview", {"filters": {"min_duration_ms": -1}}, "min_duration_ms"),
    ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
])
def test_bad_calls_come_back_as_readable_errors(store, tool, args, words):
    got = run_tool(store, tool, args)
    assert list(got) == ["error"] and words in got["error"], got


@pytest.mark.parametrize("tool", ["get_dataset_overview", "query_traces", "count_traces"])
@pytest.mark.parametrize("field, value", [
    ("start_time_gte", "yesterday"), ("end_time_lte", "2026-13-01"), ("end_time_lte", "1767225600"),
    ("start_time_gte", ""),
])
def test_a_time_filter_that_is_not_iso_8601_is_an_error(store, tool, field, value):
    want = f"{field} must be an ISO-8601 time such as 2026-01-01T00:00:00Z, got {value!r}"
    assert run_tool(store, tool, {"filters": {field: value}}) == {"error": want}
    with_regex = {"filters": {field: value, "regex_pattern": "x"}}
    assert run_tool(store, tool, with_regex) == {"error": want}


@pytest.mark.parametrize("value", ["2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T00:00",
                                   "2026-01-01T00:00:00.123456789+00:00", "2026-01-01 00:00:00"])
def test_iso_8601_time_filters_are_compared_as_given(store, lines, value):
    starts = {}
    for span in map(json.loads, lines):
        tid = span["trace_id"]
        starts[tid] = min(starts.get(tid, span["start_time"]), span["start_time"])
    want = {tid for tid, start in starts.items() if start >= value}
    assert _ids(store, {"start_time_gte": value}) == want


def test_unknown_span_in_a_known_trace(store, lines):
    tid = json.loads(lines[0])["trace_id"]
    got = run_tool(store, "search_span", {"trace_id": tid, "span_id": "nope", "regex_pattern": "x"})
    assert got == {"error": f"span_id='nope' not found in trace_id={tid!r}"}
    assert run_tool(store, "view_spans", {"trace_id": tid, "span_ids": ["nope"]}) == \
        {"result": {"trace_id": tid, "spans": [], "oversized": None}}


def test_arguments_may_be_json_text(store):
    assert run_tool(store, "count_traces", '{"filters": {"has_errors": true}}') == \
        run_tool(store, "count_traces", {"filters": {"has_errors": True}})
    assert run_tool(store, "count_traces", "") == run_tool(store, "count_traces", {})


def test_registry_shapes(store, lines):
    assert list(TOOLS) == ["get_dataset_overview", "query_traces", "count_traces", "view_trace",
                           "view_spans", "search_trace", "search_span",  # the reference's seven
                           "get_failure_report", "compare_runs", "run_code"]
    assert [name for name, spec in TOOLS.items() if spec.needs_permission] == ["run_code"]
    span = json.loads(lines[0])
    ids = {"trace_id": span["trace_id"], "span_id": span["span_id"], "span_ids": [span["span_id"]],
           "regex_pattern": "name", "run_before": "run-1", "run_after": "run-2", "code": "count_traces()"}
    for spec in TOOLS.values():
        assert spec.description and spec.title
        wanted = {k: v for k, v in ids.items() if k in spec.arguments_model.model_fields}
        answer = execute(store, spec, spec.arguments_model.model_validate(wanted))
        assert set(answer) == {"result"}, spec.name
        if spec.result_model is not None:  # what the contract names is what runs
            assert spec.result_model.model_validate(answer).model_dump(mode="json") == answer, spec.name


def test_threads_share_one_store_while_the_file_grows(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    lines = gen.generate(40, seed=31)
    path = gen.write(tmp_path / "grow.jsonl", lines[:50])
    with open_store(path) as store:
        def ask(i: int) -> int:
            if i % 10 == 0:
                gen.write(path, lines[50 + i * 4:54 + i * 4], append=True)
            got = run_tool(store, ["count_traces", "get_dataset_overview", "query_traces"][i % 3], {})
            assert "error" not in got, got
            return i

        with ThreadPoolExecutor(4) as pool:
            assert sorted(pool.map(ask, range(60))) == list(range(60))
        gen.write(path, lines[50 + 60 * 4:], append=True)
        total = len({json.loads(line)["trace_id"] for line in path.read_bytes().splitlines()})
        assert run_tool(store, "count_traces", {})["result"]["total"] == total
