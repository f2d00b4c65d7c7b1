"""`halo import langfuse` against Langfuse v4, which has no trace list.

The server is faked at the process boundary as in test_import_langfuse.py
(the same local aiohttp server, no Postgres or ClickHouse to start), with
`v4 = True`: `GET /api/public/traces` answers 404 and the importer reads
`GET /api/public/v2/observations` and `GET /api/public/v3/scores`, served
from tests/fixtures/langfuse/v4/ (shaped as Langfuse's API definition
documents them; see the README there): the same three traces as the v3
fixtures, the empty one with a single span since a v4 trace is its
observations. The server answers observations newest first and honours the
`fields` groups, so the importer has to ask for what it maps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from halo_live.cli import main
from halo_live.engine.tools import open_store, run_tool
from halo_live.exporter import canonical
from tests.test_import_langfuse import PUBLIC, SECRET, FakeLangfuse, _wait_for, read

OBSERVATIONS = "/api/public/v2/observations?"


@pytest.fixture
def langfuse(monkeypatch):
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
    monkeypatch.delenv("LANGFUSE_HOST", raising=False)
    monkeypatch.delenv("LANGFUSE_BASE_URL", raising=False)
    with FakeLangfuse() as server:
        server.v4 = True
        yield server


def _by_id(lines: list[dict]) -> dict[str, dict]:
    return {line[canonical.ATTRIBUTES].get("langfuse.observation.id")
            or line[canonical.ATTRIBUTES]["langfuse.trace.id"]: line for line in lines}


def test_observations_and_scores_map_as_the_v3_path_maps_them(langfuse, tmp_path, capsys, halo_reference):
    v3 = tmp_path / "v3.jsonl"
    langfuse.v4 = False
    assert main(["import", "langfuse", "--host", langfuse.url, str(v3)]) == 0
    langfuse.v4 = True
    langfuse.requests.clear()
    out = tmp_path / "v4.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"imported 12 spans of 3 traces into {out}"
    assert not [r for r in langfuse.requests if r.startswith("/api/public/traces/")]
    lines, before = _by_id(read(out)), _by_id(read(v3))

    # One mapping: every span the v3 path wrote comes out of v4 with the same ids, times, kinds,
    # models, usage, cost, status and scores. Only the trace's own input, output and metadata
    # are not in v4's observations, and v4 gives input/output as the raw strings it stores.
    assert set(before) <= set(lines) and set(lines) - set(before) == {"c3d4e5f6-0003-4000-8000-000000000001"}
    same = (canonical.TRACE_ID, canonical.SPAN_ID, canonical.PARENT_SPAN_ID, canonical.NAME,
            canonical.START_TIME, canonical.END_TIME, canonical.STATUS)
    for key, old in before.items():
        new = lines[key]
        same_here = same
        if not old[canonical.PARENT_SPAN_ID]:
            # v4 has no trace timestamp: the root starts with the trace's first observation.
            assert new[canonical.START_TIME] >= old[canonical.START_TIME]
            same_here = tuple(k for k in same if k != canonical.START_TIME)
        if key == "run-2025-06-01-task-7":  # the empty trace has a span in v4: the root now spans it
            assert new[canonical.END_TIME] == "2025-06-01T12:20:00.500000000Z"
            same_here = tuple(k for k in same_here if k != canonical.END_TIME)
        assert {k: new[k] for k in same_here} == {k: old[k] for k in same_here}, key
        a, b = old[canonical.ATTRIBUTES], new[canonical.ATTRIBUTES]
        for attr in (canonical.INF_OBSERVATION_KIND, canonical.INF_LLM_MODEL_NAME, canonical.INF_LLM_INPUT_TOKENS,
                     canonical.INF_LLM_OUTPUT_TOKENS, canonical.INF_LLM_COST_TOTAL, canonical.INF_AGENT_NAME,
                     canonical.OI_TOOL_NAME, canonical.INF_USER_ID, canonical.INF_SESSION_ID, "tag.tags",
                     "langfuse.observation.level", "gen_ai.evaluation.name", "gen_ai.evaluation.score.value",
                     "gen_ai.evaluation.score.label", "gen_ai.evaluation.explanation"):
            if attr == "gen_ai.evaluation.score.value" and key == "53995c3f42cd8ad8":
                continue  # a categorical score: v3 scores carry its label only, not v1's number for it
            assert b.get(attr) == a.get(attr), (key, attr)
        if "langfuse.scores" in a:
            def plain(text: str) -> list[dict]:
                return [{k: v for k, v in score.items() if not (k == "value" and score["dataType"] == "CATEGORICAL")}
                        for score in json.loads(text)]
            assert plain(b["langfuse.scores"]) == plain(a["langfuse.scores"]), key

    root = lines["b5c8a2f0-3d4e-4f6a-9b1c-2d3e4f5a6b7c"][canonical.ATTRIBUTES]
    assert (root["gen_ai.evaluation.name"], root["gen_ai.evaluation.score.value"]) == ("passed", 0.0)
    gen = lines["a1b2c3d4-0001-4000-8000-000000000002"][canonical.ATTRIBUTES]
    assert json.loads(gen[canonical.OI_INPUT_VALUE]) == [{"role": "user", "content": "Where is order 42?"}]
    call = lines["53995c3f42cd8ad8"][canonical.ATTRIBUTES]
    assert (call["gen_ai.evaluation.name"], call["gen_ai.evaluation.score.label"]) == ("tone", "polite")

    with open_store(out) as store:
        overview = run_tool(store, "get_dataset_overview", {})["result"]
    assert overview["total_traces"] == 3 and overview["total_spans"] == 12
    assert overview["error_trace_count"] == 1 and overview["tool_error_span_count"] == 1
    assert sorted(overview["model_names"]) == ["gpt-4.1", "gpt-4o-mini"]
    assert sorted(overview["agent_names"]) == ["Researcher", "Support agent"]
    ref = halo_reference.load_counts([out], tmp_path / "ref-index")
    for key in ("total_traces", "total_spans", "error_trace_count", "model_names", "agent_names",
                "total_input_tokens", "total_output_tokens"):
        assert ref[key] == overview[key], key


def test_pages_by_cursor_and_resumes_without_writing_a_span_twice(langfuse, tmp_path, capsys):
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, "--page-size", "1", str(out)]) == 0
    listing = [r for r in langfuse.requests if r.startswith(OBSERVATIONS) and "traceId=" not in r]
    assert len(listing) == 9 and sum("cursor=" in r for r in listing) == 8  # 9 observations, 1 a page
    assert capsys.readouterr().out.startswith("imported 12 spans of 3 traces")
    langfuse.requests.clear()
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"imported 0 spans of 0 traces into {out}"
    assert not [r for r in langfuse.requests if "traceId=" in r]  # nothing before the checkpoint fetched again
    langfuse.add("late-trace", "2025-06-01T12:30:00.000Z")
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    assert capsys.readouterr().out.startswith("imported 2 spans of 1 traces")
    lines = read(out)
    assert len(lines) == 14 and len({(x["trace_id"], x["span_id"]) for x in lines}) == 14


def test_an_import_stopped_mid_way_continues_where_it_stopped(langfuse, tmp_path):
    from halo_live.exporter.importers.langfuse import LangfuseImport
    from halo_live.exporter.importers.resume import ImportTarget

    out = tmp_path / "traces.jsonl"
    stop = threading.Event()
    with ImportTarget(out, "lf") as target:
        LangfuseImport(langfuse.url, PUBLIC, SECRET, target, page_size=1).run(
            stop=stop, progress=lambda done, total: stop.set())  # as if interrupted after a trace
    assert len(read(out)) == 6
    langfuse.requests.clear()
    with ImportTarget(out, "lf") as target:
        LangfuseImport(langfuse.url, PUBLIC, SECRET, target, page_size=1).run()
        assert target.stats.spans == 6 and len(target.stats.traces) == 2 and target.stats.duplicates == 0
    assert not [r for r in langfuse.requests if "traceId=b5c8a2f0" in r]  # the first trace is not fetched again


def test_since_skips_older_traces(langfuse, tmp_path):
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, "--since", "2025-06-01T12:05:00Z", str(out)]) == 0
    assert {x[canonical.NAME] for x in read(out) if not x[canonical.PARENT_SPAN_ID]} == {"research", "empty-task"}
    assert all("fromStartTime=2025-06-01T12%3A05%3A00" in r for r in langfuse.requests
               if r.startswith(OBSERVATIONS) and "traceId=" not in r)


def test_a_server_upgraded_to_v4_mid_import_writes_no_span_twice(langfuse, tmp_path, capsys):
    out = tmp_path / "traces.jsonl"
    langfuse.v4 = False
    assert main(["import", "langfuse", "--host", langfuse.url, "--since", "2025-06-01T12:05:00Z", str(out)]) == 0
    langfuse.v4 = True  # the same source key: the v3 checkpoint carries over
    langfuse.add("after-upgrade", "2025-06-01T12:30:00.000Z")
    assert main(["import", "langfuse", "--host", langfuse.url, "--since", "2025-06-01T12:05:00Z", str(out)]) == 0
    lines = read(out)
    assert len(lines) == len({(x["trace_id"], x["span_id"]) for x in lines})
    assert {x[canonical.NAME] for x in lines if not x[canonical.PARENT_SPAN_ID]} == {"research", "empty-task"}
    assert any(x[canonical.ATTRIBUTES].get("langfuse.trace.id") == "after-upgrade" for x in lines)


def test_a_server_without_the_scores_endpoint_imports_spans_and_says_so(langfuse, tmp_path, capsys):
    langfuse.missing = {"/api/public/v3/scores"}
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("imported 12 spans of 3 traces")
    assert "skipped 3: traces imported without scores (no GET /api/public/v3/scores)" in summary


def _follow(url: str, out) -> subprocess.Popen:
    """`halo import langfuse --follow` polling every 0.1 s, as a process (stopped with SIGTERM)."""
    env = {**os.environ, "LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET}
    return subprocess.Popen([sys.executable, "-m", "halo_live", "import", "langfuse", "--host", url,
                             "--follow", "--interval", "0.1", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_follow_imports_new_traces_as_they_appear(langfuse, tmp_path):
    out = tmp_path / "traces.jsonl"
    proc = _follow(langfuse.url, out)
    try:
        _wait_for(lambda: out.exists() and len(read(out)) == 12)
        langfuse.add("live-trace", "2025-06-01T12:40:00.000Z")
        _wait_for(lambda: len(read(out)) == 14)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "imported 14 spans of 4 traces" in stdout
    assert not [r for r in langfuse.requests if r.startswith("/api/public/traces/")]


def test_follow_goes_on_through_v4_when_the_server_is_upgraded(langfuse, tmp_path):
    langfuse.v4 = False
    out = tmp_path / "traces.jsonl"
    proc = _follow(langfuse.url, out)
    try:
        _wait_for(lambda: out.exists() and len(read(out)) == 11)  # v3: the empty task has its root only
        langfuse.v4 = True
        langfuse.add("after-upgrade", "2025-06-01T12:40:00.000Z")
        _wait_for(lambda: len(read(out)) == 14)  # with the empty task's span, which only v4 has
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"Langfuse at {langfuse.url} no longer has GET /api/public/traces; reading its v4" in stderr
    lines = read(out)
    assert len(lines) == len({(x["trace_id"], x["span_id"]) for x in lines}) == 14
    assert any(x[canonical.ATTRIBUTES].get("langfuse.trace.id") == "after-upgrade" for x in lines)
