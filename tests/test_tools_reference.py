"""Every trace tool answers exactly as halo-engine 0.3.5 does on a static dataset,
and again after the file grows (the same store, asked again, sees the new traces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from halo_live.engine.models import DatasetOverview, TraceSummary
from halo_live.engine.tools import open_store, run_tool
from tests import _tools_helpers as gen

pytestmark = pytest.mark.reference

# fields that exist only in halo-live's answers (the reference's are all kept)
OURS_ONLY_OVERVIEW = set(DatasetOverview.model_fields) - {
    "total_traces", "total_spans", "earliest_start_time", "latest_end_time", "service_names",
    "model_names", "agent_names", "agent_ids", "error_trace_count", "missing_parent_count",
    "missing_agent_identity_count", "project_id_mismatch_count", "otel_error_span_count",
    "tool_error_span_count", "error_taxonomy", "total_input_tokens", "total_output_tokens",
    "raw_jsonl_bytes", "sample_trace_ids"}
OURS_ONLY_SUMMARY = {"tool_names", "complete", "outcome"}
assert OURS_ONLY_OVERVIEW == {"tool_names", "in_progress_trace_count", "spans_indexed",
                              "last_span_arrival", "index_lag_bytes", "run_ids", "budget_note",
                              "outcomes", "failure_signatures", "live_tasks", "duplicate_spans"}
assert OURS_ONLY_SUMMARY < set(TraceSummary.model_fields)


def comparable(tool: str, answer: dict) -> dict:
    """Our answer with the fields the reference does not have removed."""
    answer = json.loads(json.dumps(answer))
    if "result" not in answer:
        return answer
    result = answer["result"]
    if tool == "get_dataset_overview":
        for key in OURS_ONLY_OVERVIEW:
            result.pop(key, None)
    if tool == "query_traces":
        for summary in result["traces"]:
            for key in OURS_ONLY_SUMMARY:
                summary.pop(key, None)
    return answer


def _ids(lines: list[bytes]) -> tuple[list[str], dict[str, list[str]]]:
    traces: dict[str, list[str]] = {}
    for line in lines:
        span = json.loads(line)
        traces.setdefault(span["trace_id"], []).append(span["span_id"])
    return list(traces), traces


def calls_for(lines: list[bytes]) -> list[dict]:
    """A broad battery of tool calls over the dataset made of `lines`."""
    trace_ids, spans = _ids(lines)
    sizes: dict[str, int] = {}
    for line in lines:
        tid = json.loads(line)["trace_id"]
        sizes[tid] = sizes.get(tid, 0) + len(line)
    big = max(trace_ids, key=lambda t: sizes[t])
    calls: list[dict] = [
        {"tool": "get_dataset_overview", "args": {}},
        {"tool": "get_dataset_overview", "args": {"filters": {"has_errors": True}}},
        {"tool": "get_dataset_overview", "args": {"filters": {"model_names": ["o3", "nope"]}}},
        {"tool": "get_dataset_overview", "args": {"filters": {"agent_names": ["coder"],
                                                               "project_id": "proj-a"}}},
        {"tool": "get_dataset_overview", "args": {"filters": {"regex_pattern": "Timeout"}}},
        {"tool": "get_dataset_overview", "args": {"filters": {"service_names": []}}},
        {"tool": "query_traces", "args": {}},
        {"tool": "query_traces", "args": {"limit": 7, "offset": 5}},
        {"tool": "query_traces", "args": {"filters": {"has_errors": False}, "limit": 500}},
        {"tool": "query_traces", "args": {"filters": {"start_time_gte": "2026-01-01T00:01:00",
                                                       "end_time_lte": "2026-01-01T00:03:00Z"}}},
        {"tool": "query_traces", "args": {"filters": {"start_time_gte": "2026-01-01"}}},
        {"tool": "count_traces", "args": {"filters": {"start_time_gte": "2026-01-01T00:00:30.25Z",
                                                       "end_time_lte": "2026-01-01T00:02:30+00:00"}}},
        {"tool": "get_dataset_overview", "args": {"filters": {"end_time_lte": "2026-01-01T00:02"}}},
        {"tool": "query_traces", "args": {"filters": {"regex_pattern": r"needle|FileNotFound",
                                                       "service_names": ["web-agent", "sdk-app"]}}},
        {"tool": "query_traces", "args": {"offset": 10_000}},
        {"tool": "count_traces", "args": {}},
        {"tool": "count_traces", "args": {"filters": {"has_errors": True, "model_names": ["gpt-4.1"]}}},
        {"tool": "count_traces", "args": {"filters": {"regex_pattern": "h\u00e9llo"}}},
        {"tool": "count_traces", "args": {"filters": {"regex_pattern": "\u00dcn\u00efcode"}}},
        {"tool": "search_trace", "args": {"trace_id": big, "regex_pattern": "needle"}},
        {"tool": "search_trace", "args": {"trace_id": big, "regex_pattern": r"tool\.\w+",
                                          "context_buffer_chars": 0, "max_matches": 3}},
        {"tool": "search_trace", "args": {"trace_id": trace_ids[0], "regex_pattern": "h.llo",
                                          "context_buffer_chars": 2000}},
        {"tool": "search_trace", "args": {"trace_id": trace_ids[1], "regex_pattern": "zzz-none"}},
    ]
    for tid in trace_ids:
        calls.append({"tool": "view_trace", "args": {"trace_id": tid}})
        calls.append({"tool": "view_spans", "args": {"trace_id": tid, "span_ids": spans[tid][:1]}})
    for tid in trace_ids[:6] + [big]:
        sids = spans[tid]
        calls.append({"tool": "view_spans", "args": {"trace_id": tid, "span_ids": sids[:2] + ["nope"]}})
        calls.append({"tool": "view_spans", "args": {"trace_id": tid, "span_ids": sids}})
        calls.append({"tool": "search_span", "args": {"trace_id": tid, "span_id": sids[-1],
                                                      "regex_pattern": r"\"name\":\"[^\"]*\""}})
        calls.append({"tool": "search_span", "args": {"trace_id": tid, "span_id": sids[0],
                                                      "regex_pattern": "e", "max_matches": 5,
                                                      "context_buffer_chars": 7}})
    return calls


def assert_same_as_reference(reference, paths: list[Path], calls: list[dict], store, tmp_path: Path):
    expected = reference.run(paths, calls, tmp_path / "ref-index")
    for call, exp in zip(calls, expected["answers"], strict=True):
        assert "ok" in exp, (call, exp)
        ours = run_tool(store, call["tool"], call["args"])
        assert comparable(call["tool"], ours) == exp["ok"], call


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[bytes]]:
    lines = gen.generate(40, seed=11, big_every=13, incomplete_every=8)
    return gen.write(tmp_path / "traces.jsonl", lines), lines


def test_every_tool_matches_the_reference_on_one_file(halo_reference, dataset, tmp_path):
    path, lines = dataset
    with open_store(path) as store:
        assert_same_as_reference(halo_reference, [path], calls_for(lines), store, tmp_path)


def test_a_folder_of_shards_matches_the_reference(halo_reference, tmp_path):
    folder = tmp_path / "shards"
    all_lines: list[bytes] = []
    for i, name in enumerate(["b-002.jsonl", "a-001.jsonl", "c-003.jsonl"]):
        lines = gen.generate(12, seed=100 + i, first=i * 12, big_every=5 if i == 1 else 0)
        gen.write(folder / name, lines)
    paths = sorted(folder.glob("*.jsonl"))  # dataset order: shards by name
    for p in paths:
        all_lines.extend(p.read_bytes().splitlines(keepends=True))
    with open_store(folder) as store:
        assert_same_as_reference(halo_reference, paths, calls_for(all_lines), store, tmp_path)
        whole = run_tool(store, "get_dataset_overview", {})
    with open_store(str(folder / "*.jsonl"), tmp_path / "glob-index") as store:  # a glob, same dataset
        assert run_tool(store, "get_dataset_overview", {})["result"]["sample_trace_ids"] == \
            whole["result"]["sample_trace_ids"]


def test_answers_follow_the_file_as_it_grows(halo_reference, tmp_path):
    lines = gen.generate(30, seed=5, incomplete_every=4, big_every=10)
    roots = gen.root_lines_of(lines)
    first, rest = lines[:120], lines[120:]
    path = gen.write(tmp_path / "live.jsonl", first)
    with open_store(path) as store:
        before = run_tool(store, "get_dataset_overview", {})["result"]
        first_ids, _ = _ids(first)
        assert before["total_traces"] == len(first_ids)
        assert before["spans_indexed"] == len(first)
        assert before["in_progress_trace_count"] > 0

        gen.write(path, rest, append=True)
        grown = run_tool(store, "get_dataset_overview", {})["result"]
        all_ids, _ = _ids(lines)
        assert grown["total_traces"] == len(all_ids) > before["total_traces"]
        new_id = next(t for t in all_ids if t not in first_ids)
        assert "error" not in run_tool(store, "view_trace", {"trace_id": new_id})
        assert_same_as_reference(halo_reference, [path], calls_for(lines), store, tmp_path / "r1")

        # a partial line is not seen until its newline arrives
        extra = gen.generate(3, seed=99, first=500)
        with path.open("ab") as fh:
            fh.write(extra[0][:-10])
        assert run_tool(store, "count_traces", {})["result"]["total"] == len(all_ids)
        assert run_tool(store, "get_dataset_overview", {})["result"]["index_lag_bytes"] > 0
        with path.open("ab") as fh:
            fh.write(extra[0][-10:] + b"".join(extra[1:]))
        everything = path.read_bytes().splitlines(keepends=True)
        assert_same_as_reference(halo_reference, [path], calls_for(everything), store, tmp_path / "r2")
    assert len(roots) < len(_ids(lines)[0])  # the fixture does have in-progress traces


def _line(trace_id: str, span_id: str, *, error: str | None = None, parent: str = "p", t: int = 0) -> bytes:
    from halo_live.exporter.canonical import canonical_line, encode_line, iso_from_ns
    return encode_line(canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="step",
        kind="SPAN_KIND_INTERNAL", start_time=iso_from_ns(gen.BASE_NS + t),
        end_time=iso_from_ns(gen.BASE_NS + t + 5), status_code="STATUS_CODE_ERROR" if error else "STATUS_CODE_OK",
        status_message=error or "", resource_attributes={"service.name": "svc"}, scope_name="s",
        scope_version="", attributes={"inference.project_id": "p"}))


def test_taxonomy_ties_keep_trace_order_and_stop_at_2000_error_traces(halo_reference, tmp_path):
    # trace A is first in the dataset but its error comes after B's: A's signature ranks first
    lines = [_line("a" * 32, "a1"), _line("b" * 32, "b1", error="beta"), _line("a" * 32, "a2", error="alpha")]
    # 2,000 more error traces; only the first 2,000 error traces count, so "late" is never seen
    lines += [_line(f"{i:032x}", f"s{i}", error="common" if i % 3 else "third", t=i) for i in range(1998)]
    lines += [_line(f"{9999999 + i:032x}", f"z{i}", error="late", t=5000 + i) for i in range(5)]
    path = gen.write(tmp_path / "errors.jsonl", lines)
    calls = [{"tool": "get_dataset_overview", "args": {}},
             {"tool": "get_dataset_overview", "args": {"filters": {"service_names": ["svc"]}}},
             {"tool": "query_traces", "args": {"offset": 1990, "limit": 100}}]
    with open_store(path) as store:
        assert_same_as_reference(halo_reference, [path], calls, store, tmp_path)
        taxonomy = run_tool(store, "get_dataset_overview", {})["result"]["error_taxonomy"]
    assert [g["status_message"] for g in taxonomy][-2:] == ["alpha", "beta"]
    assert "late" not in {g["status_message"] for g in taxonomy}


def test_odd_but_valid_lines_match_the_reference(halo_reference, tmp_path):
    """Missing optional fields, top-level extras, spaced JSON, CRLF, blank lines, odd values."""
    base = {"kind": "SPAN_KIND_INTERNAL", "start_time": "2026-01-01T00:00:01.000000000Z",
            "end_time": "2026-01-01T00:00:02.500000000Z", "resource": {"attributes": {}},
            "scope": {"name": "s"}}
    spans = [
        {**base, "trace_id": "t1", "span_id": "r", "name": "root ✓", "status": {"code": "STATUS_CODE_OK"},
         "attributes": {"inference.agent_name": "ä", "f": 1.5e-7, "big": 2 ** 70, "n": None,
                        "nested": {"deep": [1, {"x": "ü" * 5000}]}, "inference.llm.input_tokens": 3.0}},
        {**base, "trace_id": "t2", "span_id": "a", "parent_span_id": "r2", "name": "工具",
         "status": {"code": "STATUS_CODE_ERROR", "message": "失败: " + "é" * 300},
         "attributes": {"openinference.span.kind": "TOOL", "tool.name": "t", "flag": True},
         "events": [{"name": "exception"}], "links": []},
        {**base, "trace_id": "t1", "span_id": "c", "parent_span_id": "r", "name": "child",
         "status": {"code": "STATUS_CODE_ERROR"}, "attributes": {"inference.project_id": "p2",
                                                                  "llm.model_name": "m"}},
    ]
    raw = [json.dumps(spans[0]).encode(), json.dumps(spans[1], ensure_ascii=False).encode() + b"\r",
           b"", json.dumps(spans[2], separators=(",", ":")).encode(), b""]
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(raw) + b"\n")
    calls = [{"tool": "get_dataset_overview", "args": {}},
             {"tool": "get_dataset_overview", "args": {"filters": {"regex_pattern": "工具"}}},
             {"tool": "query_traces", "args": {}}]
    for tid, sid in (("t1", "r"), ("t1", "c"), ("t2", "a")):
        calls += [{"tool": "view_trace", "args": {"trace_id": tid}},
                  {"tool": "view_spans", "args": {"trace_id": tid, "span_ids": [sid]}},
                  {"tool": "search_trace", "args": {"trace_id": tid, "regex_pattern": r"[^\x00-\x7f]+|\\u00..",
                                                    "context_buffer_chars": 5}},
                  {"tool": "search_span", "args": {"trace_id": tid, "span_id": sid, "regex_pattern": r"\s",
                                                   "max_matches": 2}}]
    with open_store(path) as store:
        assert_same_as_reference(halo_reference, [path], calls, store, tmp_path)


def test_a_trace_spread_across_a_file_reads_right(halo_reference, tmp_path):
    """Spans far apart (not one range read) and spans close together read the same bytes."""
    far = "f" * 32
    lines = [_line(far, "first", error="early")] + gen.generate(30, seed=3) + \
        [_line(far, "last", parent="", t=99)]
    path = gen.write(tmp_path / "spread.jsonl", lines)
    calls = [{"tool": "view_trace", "args": {"trace_id": far}},
             {"tool": "search_trace", "args": {"trace_id": far, "regex_pattern": "first|last"}},
             {"tool": "count_traces", "args": {"filters": {"regex_pattern": "\"last\""}}},
             {"tool": "query_traces", "args": {"filters": {"regex_pattern": "early"}}}]
    with open_store(path) as store:
        assert_same_as_reference(halo_reference, [path], calls, store, tmp_path)
        assert run_tool(store, "count_traces", {"filters": {"regex_pattern": "\"last\""}}) == \
            {"result": {"total": 1}}
