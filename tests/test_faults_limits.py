"""Fault: oversized input and a server at its memory bound.

A request past `--max-body-mb` is refused before it is read (413 /
RESOURCE_EXHAUSTED); a 20 MB attribute within a raised limit is written and
the views stay within their budgets; a 100,000-span trace is counted exactly
and viewed within budget; a view's memory follows its budget, not the
trace's size (a bound on the child's peak RSS, not a timing); past the memory bound for requests in flight a
request gets 429 / UNAVAILABLE with retry advice, and is written once retried.
"""

from __future__ import annotations

import json

import grpc
import orjson

from halo_live.engine import budget
from halo_live.engine.tools import open_store, run_tool
from tests._fault_helpers import (GrpcClient, ServeProcess, otlp_request, post_http, span_ids, span_ids_on_disk,
                                  tool_peak_rss)
from tests._index_helpers import span_line
from tests._otlp_helpers import servers

MB = 1024 * 1024


def test_a_100_mb_request_is_refused_before_it_is_read(tmp_path):
    out = tmp_path / "traces.jsonl"
    serve = ServeProcess(out, "--no-index")
    client = GrpcClient(serve.grpc_target)
    try:
        status, _, body = post_http(serve.http_url, b"\0" * (100 * MB))
        assert status == 413 and b"larger than" in body
        assert client.export(b"\0" * (100 * MB))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert post_http(serve.http_url, otlp_request(1))[0] == 200  # and it goes on serving
    finally:
        client.close()
        assert serve.terminate() == 0
    assert "Traceback" not in serve.stderr_text()
    assert span_ids_on_disk(out) == span_ids(1, 10)


def test_a_20_mb_attribute_is_refused_by_default_and_written_within_a_raised_limit(tmp_path):
    body = otlp_request(2, 3, attr_bytes=20 * MB // 3 + 1)  # > 20 MB in all, one trace
    with servers(tmp_path / "default.jsonl", max_body_bytes=16 * MB) as s:
        assert post_http(s.http_url, body)[0] == 413
    out = tmp_path / "raised.jsonl"
    with servers(out, max_body_bytes=32 * MB) as s:
        assert post_http(s.http_url, otlp_request(3, 1, attr_bytes=20 * MB))[0] == 200
    assert len(out.read_bytes()) > 20 * MB
    store = open_store(out)
    try:
        trace_id = run_tool(store, "query_traces", {})["result"]["traces"][0]["trace_id"]
        view = run_tool(store, "view_trace", {"trace_id": trace_id})
        span_id = span_ids(3, 1)[0]
        spans = run_tool(store, "view_spans", {"trace_id": trace_id, "span_ids": [span_id]})
        search = run_tool(store, "search_trace", {"trace_id": trace_id, "regex_pattern": "x{10}"})
    finally:
        store.close()
    for answer in (view, spans, search):
        assert "error" not in answer, answer
        assert len(json.dumps(answer)) <= budget.DEFAULT_BUDGET_CHARS + 1000
    shown = view["result"]["spans"][0]["attributes"]["payload"]
    assert len(shown) < budget.DISCOVERY_ATTR_CAP_CHARS + 200


def test_a_trace_of_100000_spans_is_counted_exactly_and_viewed_within_budget(tmp_path):
    path, small = tmp_path / "huge.jsonl", tmp_path / "small.jsonl"
    trace_id = "ab" * 16
    with open(path, "wb") as fh:
        for chunk in range(10):
            fh.write(b"".join(span_line(trace_id, f"{n:016x}", "" if n == 0 else f"{0:016x}",
                                        name=f"step {n % 13}", error="boom" if n % 997 == 0 else None)
                              for n in range(chunk * 10_000, (chunk + 1) * 10_000)))
    small.write_bytes(span_line(trace_id, "1" * 16))
    open_store(small).close()
    store = open_store(path)
    try:
        overview = run_tool(store, "get_dataset_overview", {})["result"]
        assert overview["total_traces"] == 1 and overview["total_spans"] == 100_000
        query = run_tool(store, "query_traces", {})
        search = run_tool(store, "search_trace", {"trace_id": trace_id, "regex_pattern": "boom"})
    finally:
        store.close()
    view, view_rss = tool_peak_rss("view_trace", path, {"trace_id": trace_id})
    _, small_rss = tool_peak_rss("view_trace", small, {"trace_id": trace_id})
    assert query["result"]["traces"][0]["span_count"] == 100_000
    for answer in (view, query, search):
        assert "error" not in answer, answer
        assert len(json.dumps(answer)) <= budget.DEFAULT_BUDGET_CHARS + 1000
    assert view["result"]["oversized"]["span_count"] == 100_000  # a summary that says how to ask for less
    assert search["result"]["match_count"] == 101
    # Decoding every span took ~380 MB over a one-span view, and decoding the index's list of
    # the trace's spans whole ~90 MB more. What is left per span is that list as stored
    # (~60 bytes, read as one value and decoded an entry at a time) and 8 bytes of size for
    # the summary's exact median: 27 MB over a one-span view, measured.
    assert view_rss - small_rss < 100_000 * 400


def test_view_trace_holds_what_its_budget_can_show_not_the_whole_trace(tmp_path):
    path = tmp_path / "wide.jsonl"
    with open(path, "wb") as fh:
        fh.write(span_line("cd" * 16, "1" * 16, name="small"))
        for n in range(1_500):  # 24 KB a span, 36 MB in all; a view shows 4 KB heads of each value
            fh.write(span_line("ab" * 16, f"{n:016x}", "" if n == 0 else f"{0:016x}", name=f"step {n % 7}",
                               attrs={f"a{k}": f"{n} " + "x" * 6000 for k in range(4)}))
    open_store(path).close()
    small, small_rss = tool_peak_rss("view_trace", path, {"trace_id": "cd" * 16})
    wide, wide_rss = tool_peak_rss("view_trace", path, {"trace_id": "ab" * 16})
    assert [s["name"] for s in small["result"]["spans"]] == ["small"]
    assert wide["result"]["oversized"]["span_count"] == 1_500
    assert wide["result"]["oversized"]["top_span_names"][0] == ["step 0", 215]
    # Holding the spans decoded took ~65 MB more than the one-span view; streamed, a
    # view holds one span being read plus those its 150 KB budget can show.
    assert wide_rss - small_rss < 10 * MB


def test_past_the_memory_bound_a_request_is_refused_retryably_then_written(tmp_path):
    out = tmp_path / "traces.jsonl"
    with servers(out, max_inflight_bytes=1 * MB) as s:
        client = GrpcClient(s.grpc_target)
        try:
            assert s.receiver.reserve(1 * MB)  # requests already in flight fill the bound
            status, headers, _ = post_http(s.http_url, otlp_request(1))
            assert status == 429 and headers["Retry-After"] == "1"
            code, trailers = client.export(otlp_request(2))
            assert code == grpc.StatusCode.UNAVAILABLE and "google.rpc.retryinfo-bin" in trailers
            s.receiver.release(1 * MB)
            assert post_http(s.http_url, otlp_request(1))[0] == 200  # the retries
            assert client.export(otlp_request(2))[0] == grpc.StatusCode.OK
            # A request larger than the whole bound still goes through an idle server.
            assert post_http(s.http_url, otlp_request(3, 2, attr_bytes=MB))[0] == 200
        finally:
            client.close()
        assert s.receiver.throttled == 2
    assert sorted(span_ids_on_disk(out)) == sorted(span_ids(1, 10) + span_ids(2, 10) + span_ids(3, 2))
    assert all(orjson.loads(line) for line in out.read_bytes().splitlines())


def test_the_agent_lineage_remembers_a_bounded_number_of_spans_however_big_the_traces():
    from halo_live.exporter.lineage import AgentLineage

    lineage = AgentLineage(lambda lines: None, max_spans=1000)
    for t in range(10):
        for s in range(500):
            lineage.add(f"t{t}", f"s{s}", "", None)
    assert sum(len(spans) for spans in lineage._traces.values()) <= 1000
    assert lineage.seen("t9", "s499") and not lineage.seen("t0", "s0")  # the oldest went first
    for s in range(5000):  # one trace larger than the bound on its own
        lineage.add("huge", f"s{s}", "s0" if s else "", "agent" if s == 0 else None)
    assert sum(len(spans) for spans in lineage._traces.values()) <= 1000
    assert lineage.resolve("huge", "s5") == ("named", "agent")


def test_a_span_list_decoded_an_entry_at_a_time_reads_as_the_whole(tmp_path, monkeypatch):
    """A huge trace's span list is streamed (past `STREAM_ENTRIES_BYTES`); forcing that path
    on every trace gives the same spans, lines and error spans as decoding each list whole."""
    from halo_live.indexer import snapshot
    from tests._index_helpers import build, write_dataset

    path = write_dataset(tmp_path / "traces.jsonl", traces=40)
    idx = build(path, tmp_path / "idx")
    try:
        def read_all():
            with idx.snapshot() as snap:
                ids = snap.trace_ids()
                return {tid: (snap.spans(tid), list(snap.span_lines(tid)), snap.error_spans(tid)) for tid in ids}

        whole = read_all()
        monkeypatch.setattr(snapshot, "STREAM_ENTRIES_BYTES", 0)
        assert read_all() == whole and len(whole) == 40
    finally:
        idx.close()
