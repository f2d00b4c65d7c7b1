"""`halo ui`'s server without a browser: the JSON API answers as the tools do, bad input is a
4xx JSON error, every response carries the CSP, and the token and host guards hold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from halo_live.engine.models import TraceFilters
from halo_live.engine.store import index_filters
from halo_live.engine.tools import open_store, run_tool
from halo_live.engine.ui import api, views
from halo_live.engine.ui.conversation import conversation
from halo_live.engine.ui.server import CSP, UiServer
from halo_live.indexer import TraceIndex
from tests import _ui_helpers as ui


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return ui.write_dataset(tmp_path_factory.mktemp("ui") / "traces.jsonl", traces=60)


@pytest.fixture(scope="module")
def store(dataset):
    with open_store(dataset) as s:
        yield s


def _serve(dataset, store, **options):
    index = TraceIndex.open(dataset)
    server = UiServer(store, index, str(dataset), **options)
    server.start()
    return server, index


@pytest.fixture(scope="module")
def server(dataset, store):
    srv, index = _serve(dataset, store)
    yield srv
    srv.stop()
    index.close()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get_json(server, path: str, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode(params, doseq=True)
    status, _, body = get(server.url + path.lstrip("/") + (f"?{query}" if query else ""))
    return status, json.loads(body)


@pytest.mark.parametrize("name, arguments", [
    ("get_dataset_overview", {"filters": {"has_errors": True}}),
    ("count_traces", {"filters": {"model_names": ["gpt-4.1"]}}),
    ("query_traces", {"limit": 7, "offset": 3, "filters": {"has_errors": False}}),
    ("view_spans", {"trace_id": ui.CHAT_TRACE, "span_ids": [ui.CHAT_LLM_SPAN]}),
    ("search_trace", {"trace_id": ui.CHAT_TRACE, "regex_pattern": "Paris"}),
])
def test_the_tool_endpoint_answers_as_run_tool(server, store, name, arguments):
    status, body = get_json(server, f"/api/tools/{name}", args=json.dumps(arguments))
    assert status == 200
    assert body == run_tool(store, name, arguments)


@pytest.mark.parametrize("path, params, status, words", [
    ("/api/tools/no_such_tool", {}, 404, "unknown tool"),
    ("/api/tools/query_traces", {"args": "{not json"}, 400, "not JSON"),
    ("/api/tools/query_traces", {"args": json.dumps({"limit": 0})}, 400, "limit"),
    ("/api/tools/view_trace", {"args": json.dumps({"trace_id": "nope"})}, 404, "unknown trace_id"),
    ("/api/traces", {"sort": "sideways"}, 400, "sort must be one of"),
    ("/api/traces", {"errors": "maybe"}, 400, "errors must be true or false"),
    ("/api/traces", {"since": "yesterday"}, 400, "ISO-8601"),
    ("/api/traces", {"q": "(", "regex": "true"}, 400, "regex"),
    ("/api/traces", {"limit": "-1"}, 400, "limit"),
    ("/api/traces", {"outcome": "maybe"}, 400, "outcome"),
    ("/api/trace/nope/outline", {}, 404, "unknown trace_id"),
    ("/api/trace/" + ui.CHAT_TRACE + "/span/nope", {}, 404, "not found"),
    ("/api/nothing-here", {}, 404, "Not Found"),
])
def test_bad_requests_are_json_errors_with_a_4xx_status(server, path, params, status, words):
    got, body = get_json(server, path, **params)
    assert got == status
    assert set(body) == {"error"} and words in body["error"]


def test_every_response_carries_the_strict_csp(server):
    for path in ("", "static/app.js", "static/style.css", "api/run", "api/traces?sort=bad", "static/nope.js"):
        _, headers, _ = get(server.url + path)
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in CSP and "unsafe" not in CSP


def test_the_page_has_no_inline_script_or_style(server):
    _, headers, body = get(server.url)
    html = body.decode()
    assert headers["Content-Type"].startswith("text/html")
    assert "<script type=\"module\" src=\"/static/app.js\"></script>" in html
    assert html.count("<script") == 1 and "style=" not in html and "<style" not in html


def test_the_page_never_parses_data_as_html():
    static = Path(views.__file__).parent / "static"
    for js in static.glob("*.js"):
        text = js.read_text()
        for word in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert word not in text, f"{js.name} uses {word}"


def test_an_error_filter_narrows_the_table_to_the_count(server, store):
    status, body = get_json(server, "/api/traces", errors="true", limit=500)
    expected = run_tool(store, "count_traces", {"filters": {"has_errors": True}})["result"]["total"]
    assert status == 200 and body["total"] == expected == len(body["traces"])
    assert all(t["has_errors"] for t in body["traces"])


def test_the_outcome_filter_and_the_outline_answer_from_the_outcomes(tmp_path):
    path = ui.write_outcome_dataset(tmp_path / "outcomes.jsonl")
    with open_store(path) as store:
        srv, index = _serve(path, store)
        try:
            for status in ("passed", "failed", "unknown"):
                for sort in ("newest", "spans"):  # from the index's start order, and by a row field
                    got, body = get_json(srv, "/api/traces", outcome=status, sort=sort, limit=500)
                    expected = run_tool(store, "count_traces", {"filters": {"outcome": status}})["result"]
                    assert got == 200 and body["total"] == expected["total"] == len(body["traces"]) > 0
                    assert {(t["outcome"] or {}).get("passed") for t in body["traces"]} == {
                        "passed": {True}, "failed": {False}, "unknown": {None}}[status]
            _, failed = get_json(srv, f"/api/trace/{ui.FAILED_TRACE}/outline")
            assert failed["outcome"] == {"status": "failed", "passed": False, "score": 0.25, "task_id": "task-17",
                                         "label": "wrong answer", "explanation": ui.FAILED_EXPLANATION,
                                         "span_id": "verdict"}
            _, chat = get_json(srv, f"/api/trace/{ui.CHAT_TRACE}/outline")
            assert chat["outcome"] is None
            _, run = get_json(srv, "/api/run")
            totals = run_tool(store, "get_dataset_overview", {})["result"]
            assert run["counters"]["pass_rate"] == totals["outcomes"]["pass_rate"]
        finally:
            srv.stop()
            index.close()


def test_newest_first_pages_by_start_time(server, store):
    everything = run_tool(store, "query_traces", {"limit": 500})["result"]["traces"]
    # ties (the hand-made traces start together) go by dataset order
    order = sorted(enumerate(everything), key=lambda it: (it[1]["start_time"], it[0]), reverse=True)
    ids = [t["trace_id"] for _, t in order]
    _, newest = get_json(server, "/api/traces", limit=10)
    _, second = get_json(server, "/api/traces", limit=10, offset=10)
    assert [t["trace_id"] for t in newest["traces"]] == ids[:10]
    assert [t["trace_id"] for t in second["traces"]] == ids[10:20]
    assert newest["traces"][0] == next(t for t in everything if t["trace_id"] == ids[0])  # query_traces' shape
    _, oldest = get_json(server, "/api/traces", sort="oldest", limit=5)
    assert [t["trace_id"] for t in oldest["traces"]] == ids[::-1][:5]
    _, errors = get_json(server, "/api/traces", errors="true", limit=500)
    assert [t["trace_id"] for t in errors["traces"]] == [i for i in ids if any(
        t["trace_id"] == i and t["has_errors"] for t in everything)]


def test_sorting_by_duration_ranks_the_longest_first(server):
    _, body = get_json(server, "/api/traces", sort="duration", limit=500)
    rows = body["traces"]
    durations = [views.iso_ns(t["end_time"]) - views.iso_ns(t["start_time"]) for t in rows]
    assert durations == sorted(durations, reverse=True) and body["total"] == len(rows)


@pytest.mark.parametrize("warm, whole_pass_over", [(False, 2000), (False, 0), (True, 2000)])
def test_a_row_field_sort_ranks_as_the_rows_do_cold_or_warm(dataset, store, warm, whole_pass_over, monkeypatch):
    """Keys from one pass over the rows (warmed in the background or taken by the request)
    rank as the rows' own fields: largest first, ties by trace id, narrowed by a filter."""
    with store.snapshot() as snap:  # the keys as the whole rows give them
        everything = snap.rows(snap.trace_ids())
    fields = {"duration": lambda r: r.duration_ms or 0.0, "spans": lambda r: r.span_count,
              "tokens": lambda r: r.total_input_tokens + r.total_output_tokens}
    monkeypatch.setattr(api, "WHOLE_PASS_OVER", whole_pass_over)  # 0: a cold request takes one pass too
    srv, index = _serve(dataset, store)
    try:
        keys = srv.app[api.SORT_KEYS]
        if warm:
            keys.warm(store)
        else:  # as if the warm-up had not run yet
            keys._version, keys._keys, keys._complete = None, {}, False
        for sort, key in fields.items():
            expected = [r.trace_id for r in sorted(everything, key=lambda r: (-key(r), r.trace_id))]
            _, first = get_json(srv, "/api/traces", sort=sort, limit=10)
            _, rest = get_json(srv, "/api/traces", sort=sort, limit=500, offset=10)
            assert [t["trace_id"] for t in first["traces"] + rest["traces"]] == expected
            _, errors = get_json(srv, "/api/traces", sort=sort, errors="true", limit=500)
            assert [t["trace_id"] for t in errors["traces"]] == [
                i for i in expected if next(r for r in everything if r.trace_id == i).has_errors]
    finally:
        srv.stop()
        index.close()


def test_warming_reads_the_keys_once_per_index_version(dataset, store):
    keys = api.SortKeys()
    assert keys.warm(store) is True and keys.warm(store) is False
    with store.snapshot() as snap:
        assert len(keys.of(snap, [])) == snap.count()


@pytest.mark.parametrize("filters", [{"has_errors": True}, {"agent_names": ["forecaster"]}, {"model_names": ["gpt-4.1"]},
                                     {"has_errors": True, "model_names": ["gpt-4.1"]}])
def test_few_candidates_ordered_from_their_rows_keep_the_start_order(store, filters, monkeypatch):
    """Below 1/FEW_CANDIDATES of the traces, candidates are ordered from their rows' start times
    instead of a walk of the start-time index: the same ids, in both directions, paged."""
    from halo_live.indexer import snapshot

    flt = index_filters(TraceFilters(**filters))
    for newest_first in (True, False):
        with store.snapshot() as snap:
            monkeypatch.setattr(snapshot, "FEW_CANDIDATES", 0)  # always the walk
            walked = snap.trace_ids_by_start(flt, newest_first=newest_first)
            monkeypatch.setattr(snapshot, "FEW_CANDIDATES", 10**9)  # always the rows
            assert snap.trace_ids_by_start(flt, newest_first=newest_first) == walked and walked
            assert snap.trace_ids_by_start(flt, 2, 3, newest_first=newest_first) == walked[2:5]


def test_text_search_is_literal_unless_regex_is_asked(server):
    _, literal = get_json(server, "/api/traces", q="weather in Paris?")
    assert [t["trace_id"] for t in literal["traces"]] == [ui.CHAT_TRACE]
    _, regex = get_json(server, "/api/traces", q="weather in P.ris", regex="true")
    assert [t["trace_id"] for t in regex["traces"]] == [ui.CHAT_TRACE]


@pytest.mark.parametrize("sort", ["newest", "oldest", "spans"])
def test_a_text_search_stops_at_the_page_and_says_its_total_is_a_lower_bound(server, store, sort):
    """The page reads candidates only until it is full (plus one); exact=1 reads them all and
    counts what count_traces counts with the same filters, in the same order."""
    filters = {"regex_pattern": "STATUS_CODE_(OK|ERROR)"}
    expected = run_tool(store, "count_traces", {"filters": filters})["result"]["total"]
    assert expected > 7
    _, exact = get_json(server, "/api/traces", q=filters["regex_pattern"], regex="true", sort=sort, limit=500, exact=1)
    assert exact["total"] == expected == len(exact["traces"]) and exact["total_is_lower_bound"] is False
    order = [t["trace_id"] for t in exact["traces"]]
    _, first = get_json(server, "/api/traces", q=filters["regex_pattern"], regex="true", sort=sort, limit=3)
    assert first["total_is_lower_bound"] is True and first["total"] == 4  # the page and one more
    assert [t["trace_id"] for t in first["traces"]] == order[:3]
    _, later = get_json(server, "/api/traces", q=filters["regex_pattern"], regex="true", sort=sort, limit=3, offset=3)
    assert later["total_is_lower_bound"] is True and later["total"] == 7
    assert [t["trace_id"] for t in later["traces"]] == order[3:6]
    _, last = get_json(server, "/api/traces", q=filters["regex_pattern"], regex="true", sort=sort, limit=500, offset=3)
    assert last["total_is_lower_bound"] is False and last["total"] == expected
    assert [t["trace_id"] for t in last["traces"]] == order[3:]
    if sort == "newest":  # a search answers the page in the order the plain listing has
        _, plain = get_json(server, "/api/traces", limit=500)
        assert order == [t["trace_id"] for t in plain["traces"] if t["trace_id"] in set(order)]


@pytest.mark.parametrize("text", ["weather in Paris?", "STATUS_CODE_ERROR", '"name": "', "<script>", "Zürich", "no such text"])
def test_a_plain_search_finds_what_the_tools_regex_finds(server, store, text):
    """A plain search is a byte search when the text is ASCII; it finds the traces the
    tools' regex_pattern (re.escape of the text) finds, in the same order."""
    expected = run_tool(store, "query_traces", {"filters": {"regex_pattern": re.escape(text)}, "limit": 500})["result"]
    _, body = get_json(server, "/api/traces", q=text, exact=1, limit=500)
    assert body["total"] == expected["total"] and body["total_is_lower_bound"] is False
    assert sorted(t["trace_id"] for t in body["traces"]) == sorted(t["trace_id"] for t in expected["traces"])


def test_a_narrowed_search_counts_exactly_as_count_traces(server, store):
    filters = {"has_errors": True, "regex_pattern": "STATUS_CODE_ERROR"}
    expected = run_tool(store, "count_traces", {"filters": filters})["result"]["total"]
    _, body = get_json(server, "/api/traces", errors="true", q="STATUS_CODE_ERROR", exact="1", limit=2)
    assert body["total"] == expected and body["total_is_lower_bound"] is False and len(body["traces"]) == min(2, expected)


def test_a_signature_lists_exactly_its_traces(server, store):
    _, run = get_json(server, "/api/run")
    top = run["signatures"][0]
    _, body = get_json(server, "/api/traces", sig_name=top["span_name"], sig_message=top["status_message"], limit=500)
    assert body["total"] == top["trace_count"]
    for t in body["traces"]:
        hits = run_tool(store, "search_trace", {"trace_id": t["trace_id"], "regex_pattern": "STATUS_CODE_ERROR"})
        assert hits["result"]["match_count"] >= 1
    assert set(top["example_trace_ids"]) <= {t["trace_id"] for t in body["traces"]}
    _, by_spans = get_json(server, "/api/traces", sig_name=top["span_name"], sig_message=top["status_message"],
                           sort="spans", limit=500)
    assert by_spans["total"] == body["total"]
    assert sorted(t["trace_id"] for t in by_spans["traces"]) == sorted(t["trace_id"] for t in body["traces"])
    assert [t["span_count"] for t in by_spans["traces"]] == sorted((t["span_count"] for t in body["traces"]), reverse=True)


def test_every_signature_lists_the_traces_whose_error_spans_hit_it(tmp_path):
    """The rows' signature lists agree with the error spans themselves, in both orders, paged,
    narrowed by a filter, and for a message longer than the 200 characters a signature keeps."""
    from tests._outcome_helpers import span

    path = ui.write_dataset(tmp_path / "sigs.jsonl", traces=40)
    long = "E" * 150 + " and then " + "x" * 150
    with path.open("ab") as fh:
        fh.write(span(f"{1:032x}", "a", error=long) + span(f"{2:032x}", "b", error=long[:200] + "different tail"))
    with open_store(path) as store, store.snapshot() as snap:
        sigs = snap.error_signatures()
        assert any(len(g.status_message) == 200 and g.trace_count == 2 for g in sigs)
        for newest_first in (True, False):
            errors = snap.trace_ids_by_start(index_filters(TraceFilters(has_errors=True)), newest_first=newest_first)
            gpt = set(snap.trace_ids_by_start(index_filters(TraceFilters(model_names=["gpt-4.1"]))))
            for g in sigs:
                want = [t for t in errors if any((name, (message or "")[:200]) == (g.span_name, g.status_message)
                                                 for name, message in snap.error_spans(t))]
                assert snap.trace_ids_by_signature(g.span_name, g.status_message, newest_first=newest_first) == (
                    want, g.trace_count)
                assert snap.trace_ids_by_signature(g.span_name, g.status_message, offset=1, limit=2,
                                                   newest_first=newest_first) == (want[1:3], len(want))
                narrowed = snap.trace_ids_by_signature(g.span_name, g.status_message,
                                                       index_filters(TraceFilters(model_names=["gpt-4.1"])),
                                                       newest_first=newest_first)
                assert narrowed == ([t for t in want if t in gpt], len([t for t in want if t in gpt]))
                assert snap.trace_ids_by_signature(g.span_name, g.status_message,
                                                   index_filters(TraceFilters(has_errors=False))) == ([], 0)


def test_the_run_summary_counts_and_ranks(server, store):
    _, run = get_json(server, "/api/run")
    overview = run_tool(store, "get_dataset_overview", {})["result"]
    counters = run["counters"]
    assert counters["traces"] == overview["total_traces"] and counters["spans"] == overview["total_spans"]
    assert counters["error_traces"] == overview["error_trace_count"]
    assert sum(run["histogram"]["counts"]) == overview["total_traces"]
    ranks = [(-s["trace_count"], -s["error_span_count"]) for s in run["signatures"]]
    assert ranks == sorted(ranks)
    assert "gpt-4.1" in run["facets"]["model_names"]


def test_the_outline_has_every_span_without_bodies(server):
    _, out = get_json(server, f"/api/trace/{ui.CHAT_TRACE}/outline")
    assert [s["span_id"] for s in out["spans"]] == [ui.CHAT_TOOL_SPAN, ui.CHAT_LLM_SPAN, "11110000aaaa0000"]
    tool = out["spans"][0]
    assert tool["status"] == "STATUS_CODE_ERROR" and tool["status_message"] == ui.TOOL_ERROR
    assert tool["tool"] == "get_weather" and "attributes" not in tool
    assert out["end_ns"] - out["start_ns"] == 33_000_000_000


def test_a_span_answer_has_view_spans_raw_line_conversation_and_command(server, store, dataset):
    _, body = get_json(server, f"/api/trace/{ui.CHAT_TRACE}/span/{ui.CHAT_LLM_SPAN}")
    args = {"trace_id": ui.CHAT_TRACE, "span_ids": [ui.CHAT_LLM_SPAN]}
    assert body["view_spans"] == run_tool(store, "view_spans", args)
    assert json.loads(body["raw"])["span_id"] == ui.CHAT_LLM_SPAN
    assert [m["role"] for m in body["conversation"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert body["conversation"][2]["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    command = body["command"].split()
    assert command[:4] == ["halo", "tool", "view_spans", str(dataset)]
    printed = subprocess.run([sys.executable, "-m", "halo_live", *command[1:4], "--args", json.dumps(args)],
                             capture_output=True, text=True, check=True).stdout
    assert json.loads(printed) == body["view_spans"]


@pytest.mark.parametrize("attrs, expected", [
    ({"llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
      "llm.input_messages.1.message.role": "assistant",
      "llm.input_messages.1.message.tool_calls.0.tool_call.function.name": "f",
      "llm.input_messages.1.message.tool_calls.0.tool_call.function.arguments": "{}"},
     [("user", "hi", []), ("assistant", "", ["f"])]),
    ({"llm.input_messages": json.dumps([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
                                        {"type": "function_call", "name": "g", "arguments": "{}", "call_id": "c"},
                                        {"type": "function_call_output", "call_id": "c", "output": "42"}]),
      "llm.output_messages": json.dumps([{"output": [{"type": "message", "role": "assistant",
                                                      "content": [{"type": "output_text", "text": "a"}]}]}])},
     [("user", "q", []), ("assistant", "", ["g"]), ("tool", "42", []), ("assistant", "a", [])]),
    ({"gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "x"}]}])},
     [("user", "x", [])]),
    ({"inference.observation_kind": "LLM", "input.value": "plain", "output.value": "answer"},
     [("user", "plain", []), ("assistant", "answer", [])]),
    ({"inference.observation_kind": "TOOL", "input.value": "{}"}, []),
])
def test_conversations_in_every_spelling(attrs, expected):
    got = [(m["role"], m["text"], [c["name"] for c in m["tool_calls"]]) for m in conversation(attrs)]
    assert got == expected


def test_a_set_token_is_required_and_traded_for_a_cookie(dataset, store):
    srv, index = _serve(dataset, store, token="s3cret")
    try:
        assert srv.url.endswith("?token=s3cret")
        base = srv.url.split("?")[0]
        status, _, body = get(base + "api/run")
        assert status == 401 and "token" in json.loads(body)["error"]
        assert get(base + "api/run?token=wrong")[0] == 401
        assert get(base + "api/run", {"Authorization": "Bearer s3cret"})[0] == 200
        status, headers, _ = get(base + "?token=s3cret")
        assert status == 303 and headers["Location"] == "/" and "HttpOnly" in headers["Set-Cookie"]
        assert get(base + "api/run", {"Cookie": "halo_ui_token=s3cret"})[0] == 200
    finally:
        srv.stop()
        index.close()


def test_a_foreign_host_header_is_refused_on_loopback(server):
    status, _, body = get(server.url + "api/run", {"Host": f"evil.example:{server.port}"})
    assert status == 421 and "loopback" in json.loads(body)["error"]


def test_a_non_loopback_bind_without_token_refuses_to_start(dataset, store, monkeypatch):
    monkeypatch.delenv("HALO_UI_TOKEN", raising=False)
    with pytest.raises(ValueError, match="needs a token"):
        UiServer(store, None, str(dataset), host="0.0.0.0")
    run = subprocess.run([sys.executable, "-m", "halo_live", "ui", str(dataset), "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "HALO_UI_TOKEN"})
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "halo: error: refusing to serve on 0.0.0.0: a non-loopback address needs a token (--token or $HALO_UI_TOKEN)"]


def test_a_missing_path_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "halo_live", "ui", str(tmp_path / "nope.jsonl")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1 and "no such" in run.stderr


def test_every_static_file_ships_in_the_package():
    setup = (Path(__file__).resolve().parent.parent / "setup.py").read_text()
    patterns = re.findall(r'"static/\*(\.\w+)"', setup)
    for f in (Path(views.__file__).parent / "static").iterdir():
        assert f.suffix in patterns, f"{f.name} is not in setup.py's package_data"


def test_conversation_and_outline_never_raise_on_odd_spans(tmp_path):
    import random

    rng = random.Random(5)
    leaves = [None, 1, 2.5, True, "x", "<b>", [], {}]

    def junk(depth=0):
        if depth > 3 or rng.random() < 0.3:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [junk(depth + 1) for _ in range(rng.randint(0, 3))]
        keys = ["role", "content", "tool_calls", "function", "type", "output", "parts", "name", "id", "text"]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 4))}

    for _ in range(500):
        value = junk()
        attrs = {"llm.input_messages": rng.choice([value, json.dumps(value)]),
                 "gen_ai.output.messages": json.dumps(junk()),
                 "llm.output_messages.0.message.tool_calls.1.tool_call.function.name": junk(),
                 "inference.observation_kind": "LLM", "input.value": junk()}
        for m in conversation(attrs):
            assert isinstance(m["text"], str) and isinstance(m["role"], str)
    deep = "[" * 5000 + "]" * 5000
    assert conversation({"llm.input_messages": deep}) == []
    nested: dict = {}
    cursor = nested
    for _ in range(3000):
        cursor["output"] = [{}]
        cursor = cursor["output"][0]
    assert conversation({"llm.input_messages": nested})[0]["role"] == "unknown"

    from tests._index_helpers import odd_lines

    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"".join(odd_lines()))
    with open_store(path) as store:
        for row in run_tool(store, "query_traces", {"limit": 500})["result"]["traces"]:
            out = views.outline(store, row["trace_id"])
            assert len(out["spans"]) <= row["span_count"]
