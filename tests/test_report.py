"""`halo report`: the deterministic failure report, checked against the raw spans."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from halo_live.cli import main
from halo_live.engine.report import build_report
from halo_live.engine.tools import open_store
from halo_live.exporter import canonical
from halo_live.exporter.canonical import ns_from_iso
from tests import _tools_helpers as gen


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[dict]]:
    lines = gen.generate(30, seed=8, incomplete_every=6)
    path = gen.write(tmp_path / "t.jsonl", lines)
    return path, [json.loads(line) for line in lines]


def _by_trace(spans: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in spans:
        out.setdefault(s["trace_id"], []).append(s)
    return out


def test_report_numbers_match_the_spans(dataset):
    path, spans = dataset
    traces = _by_trace(spans)
    with open_store(path) as store:
        report = build_report(store, top=5)
    ov = report["overview"]
    assert ov["total_traces"] == len(traces) and ov["total_spans"] == len(spans)
    errors = [s for s in spans if s["status"]["code"] == "STATUS_CODE_ERROR"]
    assert ov["otel_error_span_count"] == len(errors)

    # tool error rates: every TOOL span, by its tool name
    calls = Counter(s["attributes"]["tool.name"] for s in spans if "tool.name" in s["attributes"])
    failed = Counter(s["attributes"]["tool.name"] for s in errors if "tool.name" in s["attributes"])
    rates = {t["tool"]: t for t in report["tool_error_rates"]}
    assert {name: (t["calls"], t["error_spans"]) for name, t in rates.items()} == \
        {name: (n, failed[name]) for name, n in calls.items()}
    worst = report["tool_error_rates"][0]
    assert worst["error_spans"] == max(failed.values())
    assert worst["error_rate"] == round(worst["error_spans"] / worst["calls"], 4)

    # error signatures ranked by distinct traces hit, then error spans
    sig = Counter((s["name"], s["status"]["message"][:200]) for s in errors)
    hit: dict[tuple, set] = {}
    for s in errors:
        hit.setdefault((s["name"], s["status"]["message"][:200]), set()).add(s["trace_id"])
    ranked = report["error_signatures"]
    assert ranked[0]["trace_count"] == max(len(t) for t in hit.values())
    keys = [(-g["trace_count"], -g["error_span_count"]) for g in ranked]
    assert keys == sorted(keys)
    for g in ranked:
        key = (g["span_name"], g["status_message"])
        assert (g["error_span_count"], g["trace_count"]) == (sig[key], len(hit[key]))
        first = next(s for s in traces[g["example_trace_ids"][0]]
                     if s["status"]["code"] == "STATUS_CODE_ERROR" and s["name"] == key[0]
                     and s["status"]["message"][:200] == key[1])
        assert g["example_cause"] and len(g["example_cause"]) <= 160
        assert " ".join(first["status"]["message"].split()).startswith(g["example_cause"].rstrip("…"))

    # slowest and hungriest
    def duration(tid):
        ss = traces[tid]
        return (ns_from_iso(max(s["end_time"] for s in ss)) - ns_from_iso(min(s["start_time"] for s in ss))) / 1e6

    slowest = sorted(traces, key=lambda t: (-duration(t), t))[:5]
    assert [r["trace_id"] for r in report["slowest_traces"]] == slowest

    def tokens(tid):
        return sum(s["attributes"].get("inference.llm.input_tokens", 0)
                   + s["attributes"].get("inference.llm.output_tokens", 0) for s in traces[tid])

    assert [r["trace_id"] for r in report["token_hungry_traces"]] == \
        sorted(traces, key=lambda t: (-tokens(t), t))[:5]
    open_ = {tid for tid, ss in traces.items() if all(s["parent_span_id"] for s in ss)}
    assert {r["trace_id"] for r in report["in_progress_traces"]} == open_
    assert ov["in_progress_trace_count"] == len(open_)


def test_report_is_deterministic_and_json_on_request(dataset, capsys):
    path, _ = dataset
    assert main(["report", str(path), "--json", "--top", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["report", str(path), "--json", "--top", "3"]) == 0
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert set(data) == {"outcomes", "overview", "error_signatures", "silent_failures", "tool_error_rates",
                         "slowest_traces", "token_hungry_traces", "in_progress_traces"}
    assert data["outcomes"] is None and data["silent_failures"] is None  # no outcome recorded here
    assert len(data["slowest_traces"]) == 3


def test_report_tables_for_people(dataset, capsys):
    path, _ = dataset
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    for title in ("Error signatures", "Tool error rates", "Slowest traces",
                  "Most token-hungry traces", "Traces in progress"):
        assert title in out


def test_report_on_a_clean_dataset(tmp_path, capsys):
    path = gen.write(tmp_path / "empty.jsonl", [])
    assert main(["report", str(path)]) == 0
    assert "No ERROR spans" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["report", "/nonexistent/x.jsonl"], "no such trace file"),
    (["report", "{path}", "--top", "0"], "--top must be at least 1"),
])
def test_report_errors_are_one_line(dataset, capsys, argv, words):
    path, _ = dataset
    code = main([a.replace("{path}", str(path)) for a in argv])
    err = capsys.readouterr().err
    assert code != 0 and words in err and len(err.strip().splitlines()) == 1


def _error_line(trace_id: str, span_id: str, name: str, message: str, attrs: dict,
                events: list | None = None) -> bytes:
    line = canonical.canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id="", name=name, kind=canonical.SPAN_KIND_INTERNAL,
        start_time="2026-01-01T00:00:00.000000000Z", end_time="2026-01-01T00:00:01.000000000Z",
        status_code=canonical.STATUS_ERROR, status_message=message, resource_attributes={},
        scope_name="t", scope_version="", attributes=attrs)
    if events:
        line[canonical.EVENTS] = events
    return canonical.encode_line(line)


def test_signatures_rank_by_traces_hit_and_show_an_example_cause(tmp_path, capsys, monkeypatch):
    sdk = "Error running tool (non-fatal)"
    lines = [  # one trace retries a tool 3 times; another error hits 2 traces once each
        _error_line("a" * 32, f"{i:016x}", "function.fetch", sdk,
                    {canonical.SDK_ERROR_DATA: '{"tool_name": "fetch", "error": "HTTP 503 from upstream"}'})
        for i in range(1, 4)]
    lines.append(_error_line("b" * 32, "1" * 16, "function.read", sdk,
                             {canonical.OI_OUTPUT_VALUE: "FileNotFoundError: " + "/very/long/path" * 30}))
    lines.append(_error_line("c" * 32, "2" * 16, "function.read", sdk, {}))
    lines.append(_error_line("d" * 32, "3" * 16, "chat", "",
                             {}, [{"name": "exception", "time": "2026-01-01T00:00:00.5Z",
                                   "attributes": {"exception.type": "TimeoutError",
                                                  "exception.message": "model took 60s"}}]))
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with open_store(path) as store:
        sigs = build_report(store)["error_signatures"]
    assert [(g["span_name"], g["trace_count"], g["error_span_count"]) for g in sigs] == [
        ("function.read", 2, 2), ("function.fetch", 1, 3), ("chat", 1, 1)]
    read, fetch, chat = sigs
    assert fetch["example_cause"] == "HTTP 503 from upstream"
    assert read["example_cause"].startswith("FileNotFoundError: /very/long/path")
    assert len(read["example_cause"]) == 160 and read["example_cause"].endswith("…")
    assert chat["example_cause"] == "TimeoutError: model took 60s"
    monkeypatch.setenv("COLUMNS", "200")  # rich reads it: one table row per line
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "cause: HTTP 503 from upstream" in out and "cause: TimeoutError: model took 60s" in out
    assert out.count("cause:") == 3


def test_agents_sdk_tool_errors_show_their_cause(tmp_path, monkeypatch):
    """A real Runner.run whose tool raises: the report names the exception, not just the SDK's words."""
    import asyncio

    import openai
    from agents import Agent, Runner, function_tool
    from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel

    from halo_live.demo.model_server import ModelServer, Reply, ScriptedPolicy, ToolCall
    from halo_live.exporter import setup_tracing
    from tests._exporter_helpers import sdk_processors_restored

    # With the SDK's default failure handler the cause never reaches the trace (0.24
    # redacts it and tells the model only "An error occurred..."); with an app's own
    # handler the SDK writes the exception text into the span's error data.
    @function_tool(failure_error_function=lambda ctx, exc: f"fetch failed, try later ({exc})")
    def fetch(url: str) -> str:
        """Fetch a page."""
        raise ConnectionError(f"upstream refused {url}")

    path = tmp_path / "sdk.jsonl"
    with sdk_processors_restored():
        processor = setup_tracing(service_name="svc", project_id="p", path=path, run_id="r")
        policy = ScriptedPolicy([Reply(tool_calls=[ToolCall("fetch", '{"url": "http://x.test/a"}')]),
                                 Reply(text="gave up")])
        with ModelServer(policy) as server:
            async def go():
                client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
                try:
                    agent = Agent(name="a", tools=[fetch], model=OpenAIChatCompletionsModel(
                        model="m", openai_client=client))
                    return await Runner.run(agent, "go")
                finally:
                    await client.close()

            assert asyncio.run(go()).final_output == "gave up"
        processor.shutdown()
    with open_store(path) as store:
        report = build_report(store)
    [sig] = report["error_signatures"]
    assert sig["span_name"] == "function.fetch"
    assert sig["status_message"] == "Error running tool (non-fatal)"
    assert "upstream refused http://x.test/a" in sig["example_cause"]
    assert report["overview"]["tool_error_span_count"] == 1
