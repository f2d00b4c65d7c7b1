"""`halo import langfuse`: traces, observations and scores onto canonical lines.

Langfuse needs Postgres and ClickHouse, which a test here cannot start. So
the server is faked at the process boundary: a tiny local aiohttp server
answers with Langfuse's published API responses, stored as fixtures
(tests/fixtures/langfuse/, shaped exactly as Langfuse's API definition
documents them; see the README there), checking basic auth as Langfuse does.
It serves v3's trace API and v4's observations and scores; `v4 = True`
takes the trace API away, as Langfuse v4 does. Everything on our side
(importer, projection, writer, CLI) is real. The v4 tests are in
test_import_langfuse_v4.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from halo_live.cli import main
from halo_live.exporter import canonical
from halo_live.engine.tools import open_store, run_tool

FIXTURES = Path(__file__).parent / "fixtures" / "langfuse"
PUBLIC, SECRET = "pk-lf-test", "sk-lf-test"


class FakeLangfuse:
    """Langfuse's public API from fixtures, on a free loopback port, in a background thread."""

    def __init__(self) -> None:
        self.listing = json.loads((FIXTURES / "traces.json").read_text())
        self.traces = {t["id"]: json.loads((FIXTURES / f"trace-{t['id']}.json").read_text())
                       for t in self.listing["data"]}
        self.observations = json.loads((FIXTURES / "v4" / "observations.json").read_text())["data"]
        self.scores = json.loads((FIXTURES / "v4" / "scores.json").read_text())["data"]
        self.requests: list[str] = []
        self.v4 = False  # Langfuse v4 has no GET /api/public/traces
        self.missing: set[str] = set()  # paths this server answers 404 (an older or stranger server)
        self.down = False  # answers 503, as a server restarting does
        self.refused = 0
        self.loop = asyncio.new_event_loop()
        self.url = ""

    def add(self, trace_id: str, timestamp: str) -> None:
        """A new trace (a copy of the empty one) appears, as in a live run."""
        full = {**self.traces["run-2025-06-01-task-7"], "id": trace_id, "timestamp": timestamp}
        self.traces[trace_id] = full
        self.listing["data"].append({**self.listing["data"][2], "id": trace_id, "timestamp": timestamp})
        # In v4 a trace is its observations: a copy of the empty task's one span.
        setup = next(o for o in self.observations if o["name"] == "setup")
        self.observations.append({**setup, "id": f"obs-{trace_id}", "traceId": trace_id, "startTime": timestamp,
                                  "endTime": timestamp, "createdAt": timestamp, "updatedAt": timestamp})

    def _authorized(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if self.down:
            self.refused += 1
            return web.json_response({"message": "Service Unavailable"}, status=503,
                                     headers={"Retry-After": "0"})
        if not self._authorized(request):
            return web.json_response({"message": "Invalid credentials. Confirm that you've configured "
                                                 "the correct host."}, status=401)
        if request.path in self.missing:
            return web.json_response({"message": "not found"}, status=404)
        if request.path == "/api/public/projects":
            return web.json_response(json.loads((FIXTURES / "projects.json").read_text()))
        if request.path == "/api/public/traces" and not self.v4:
            q = request.query
            assert q.get("orderBy") == "timestamp.asc"
            rows = sorted(self.listing["data"], key=lambda t: t["timestamp"])
            if q.get("fromTimestamp"):
                since = _when(q["fromTimestamp"])
                rows = [t for t in rows if _when(t["timestamp"]) >= since]
            page, limit = int(q.get("page", 1)), int(q.get("limit", 50))
            total = len(rows)
            return web.json_response({"data": rows[(page - 1) * limit: page * limit],
                                      "meta": {"page": page, "limit": limit, "totalItems": total,
                                               "totalPages": -(-total // limit)}})
        if request.path == "/api/public/v2/observations":
            return self._observations(request.query)
        if request.path == "/api/public/v3/scores":
            return self._scores(request.query)
        if request.path.startswith("/api/public/traces/") and not self.v4:
            trace = self.traces.get(request.match_info["tail"].split("/")[-1])
            if trace is None:
                return web.json_response({"message": "Trace not found within authorized project"}, status=404)
            return web.json_response(trace)
        return web.json_response({"message": "not found"}, status=404)

    def _observations(self, q) -> web.Response:
        """`GET /api/public/v2/observations`: filters, field groups and a cursor, newest first."""
        assert q.get("parseIoAsJson") in (None, "false")  # deprecated: true is a 400
        rows = sorted(self.observations, key=lambda o: _when(o["startTime"]), reverse=True)
        if q.get("traceId"):
            rows = [o for o in rows if o["traceId"] == q["traceId"]]
        if q.get("fromStartTime"):
            rows = [o for o in rows if _when(o["startTime"]) >= _when(q["fromStartTime"])]
        groups = {"core", *(q.get("fields") or "core,basic").split(",")}
        keep = {name for group in groups for name in OBSERVATION_GROUPS[group]}
        rows = [{**{k: v for k, v in o.items() if k in keep},
                 **{k: (o.get(k) if "model" in groups else None) for k in OBSERVATION_ENRICHMENT}} for o in rows]
        return self._page(q, rows, 1000, {})

    def _scores(self, q) -> web.Response:
        """`GET /api/public/v3/scores`: by trace (its own scores and its observations'), by time, a cursor."""
        limit = int(q.get("limit", 50))
        if limit > 100:
            return web.json_response({"message": "limit must be at most 100"}, status=400)
        rows = self.scores
        if q.get("traceId"):
            rows = [s for s in rows if q["traceId"] in (s["subject"]["id"] if s["subject"]["kind"] == "trace"
                                                        else s["subject"].get("traceId"))]
        if q.get("fromTimestamp"):
            rows = [s for s in rows if _when(s["timestamp"]) >= _when(q["fromTimestamp"])]
        groups = set((q.get("fields") or "").split(",")) - {""}
        hidden = {name for group, names in SCORE_GROUPS.items() if group not in groups for name in names}
        rows = [{k: v for k, v in s.items() if k not in hidden} for s in rows]
        return self._page(q, rows, 100, {"limit": limit})

    def _page(self, q, rows: list, most: int, meta: dict) -> web.Response:
        limit = min(int(q.get("limit", 50)), most)
        offset = int(base64.urlsafe_b64decode(q["cursor"]).decode()) if q.get("cursor") else 0
        following = offset + limit < len(rows)
        cursor = {"cursor": base64.urlsafe_b64encode(str(offset + limit).encode()).decode()} if following else {}
        return web.json_response({"data": rows[offset: offset + limit], "meta": {**meta, **cursor}})

    def __enter__(self) -> FakeLangfuse:
        ready = threading.Event()

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._handle)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop)
        ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# The field groups of `GET /api/public/v2/observations` and `/api/public/v3/scores` (Langfuse's API definition).
OBSERVATION_GROUPS = {
    "core": ["id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"],
    "basic": ["name", "level", "statusMessage", "version", "environment", "bookmarked", "public", "userId",
              "sessionId", "isRootObservation"],
    "time": ["completionStartTime", "createdAt", "updatedAt"],
    "io": ["input", "output"],
    "metadata": ["metadata"],
    "model": ["providedModelName", "internalModelId", "modelParameters"],
    "usage": ["usageDetails", "costDetails", "totalCost", "usagePricingTierName"],
    "prompt": ["promptId", "promptName", "promptVersion"],
    "metrics": ["latency", "timeToFirstToken"],
    "trace_context": ["tags", "release", "traceName"],
}
OBSERVATION_ENRICHMENT = {"modelId", "inputPrice", "outputPrice", "totalPrice"}  # always there, null without `model`
SCORE_GROUPS = {"details": ["comment", "configId", "metadata"], "subject": ["subject"],
                "annotation": ["authorUserId", "queueId"]}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def langfuse(monkeypatch):
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
    monkeypatch.delenv("LANGFUSE_HOST", raising=False)
    monkeypatch.delenv("LANGFUSE_BASE_URL", raising=False)
    with FakeLangfuse() as server:
        yield server


def read(path: Path) -> list[dict]:
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines()]


def test_traces_observations_and_scores_map_onto_canonical_lines(langfuse, tmp_path, capsys, halo_reference):
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"imported 11 spans of 3 traces into {out}"
    lines = read(out)
    by_id = {line[canonical.ATTRIBUTES].get("langfuse.observation.id")
             or line[canonical.ATTRIBUTES]["langfuse.trace.id"]: line for line in lines}
    for line in lines:
        assert line[canonical.ATTRIBUTES][canonical.INF_PROJECT_ID] == "support-bot"

    root = by_id["b5c8a2f0-3d4e-4f6a-9b1c-2d3e4f5a6b7c"]
    attrs = root[canonical.ATTRIBUTES]
    assert root[canonical.PARENT_SPAN_ID] == "" and root[canonical.NAME] == "support-run"
    assert len(root[canonical.TRACE_ID]) == 32 and len(root[canonical.SPAN_ID]) == 16
    assert (root[canonical.START_TIME], root[canonical.END_TIME]) == (
        "2025-06-01T12:00:00.000000000Z", "2025-06-01T12:00:03.900000000Z")
    assert attrs[canonical.INF_USER_ID] == "user-3" and attrs[canonical.INF_SESSION_ID] == "sess-9"
    assert attrs["tag.tags"] == ["bench", "v2"] and json.loads(attrs["metadata"]) == {"task": "t7"}
    # Scores: the latest is the trace's evaluation result; all of them are kept.
    assert attrs["gen_ai.evaluation.name"] == "passed"
    assert attrs["gen_ai.evaluation.score.value"] == 0.0
    assert attrs["gen_ai.evaluation.score.label"] == "False"
    assert [s["name"] for s in json.loads(attrs["langfuse.scores"])] == ["correctness", "passed"]

    agent = by_id["a1b2c3d4-0001-4000-8000-000000000001"]
    assert agent[canonical.PARENT_SPAN_ID] == root[canonical.SPAN_ID]
    assert agent[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == "AGENT"
    gen = by_id["a1b2c3d4-0001-4000-8000-000000000002"]
    g = gen[canonical.ATTRIBUTES]
    assert gen[canonical.PARENT_SPAN_ID] == agent[canonical.SPAN_ID]
    assert (g[canonical.INF_OBSERVATION_KIND], g[canonical.INF_LLM_MODEL_NAME]) == ("LLM", "gpt-4o-mini")
    assert (g[canonical.INF_LLM_INPUT_TOKENS], g[canonical.INF_LLM_OUTPUT_TOKENS]) == (120, 30)
    assert g[canonical.INF_LLM_COST_TOTAL] == 0.00036
    assert g[canonical.INF_AGENT_NAME] == "Support agent"  # from the AGENT observation above it
    assert json.loads(g["llm.invocation_parameters"]) == {"temperature": "0.2", "max_tokens": 512}
    tool = by_id["a1b2c3d4-0001-4000-8000-000000000003"]
    assert tool[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "order 42 not found"}
    assert tool[canonical.ATTRIBUTES][canonical.OI_TOOL_NAME] == "lookup_order"
    assert tool[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == "TOOL"
    event = by_id["a1b2c3d4-0001-4000-8000-000000000004"]
    assert event[canonical.START_TIME] == event[canonical.END_TIME]

    # An OTel-ingested trace keeps its ids; a score on an observation lands on that span.
    otel = [x for x in lines if x[canonical.TRACE_ID] == "0af7651916cd43dd8448eb211c80319c"]
    assert {x[canonical.SPAN_ID] for x in otel} >= {"b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8"}
    call = by_id["53995c3f42cd8ad8"][canonical.ATTRIBUTES]
    assert (call[canonical.INF_LLM_INPUT_TOKENS], call[canonical.INF_LLM_OUTPUT_TOKENS]) == (40, 8)  # legacy usage
    assert (call["gen_ai.evaluation.name"], call["gen_ai.evaluation.score.label"]) == ("tone", "polite")

    # The trace tools and halo-engine 0.3.5 read the result.
    with open_store(out) as store:
        overview = run_tool(store, "get_dataset_overview", {})["result"]
    assert overview["total_traces"] == 3 and overview["total_spans"] == 11
    assert overview["error_trace_count"] == 1 and overview["tool_error_span_count"] == 1
    assert sorted(overview["model_names"]) == ["gpt-4.1", "gpt-4o-mini"]
    assert sorted(overview["agent_names"]) == ["Researcher", "Support agent"]
    assert overview["tool_names"] == ["lookup_order"]
    ref = halo_reference.load_counts([out], tmp_path / "ref-index")
    for key in ("total_traces", "total_spans", "error_trace_count", "model_names", "agent_names",
                "total_input_tokens", "total_output_tokens"):
        assert ref[key] == overview[key], key


def test_paged_and_resumable_without_writing_a_trace_twice(langfuse, tmp_path, capsys):
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, "--page-size", "1", str(out)]) == 0
    pages = [r for r in langfuse.requests if r.startswith("/api/public/traces?")]
    assert len(pages) == 3
    capsys.readouterr()
    langfuse.requests.clear()
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    assert capsys.readouterr().out.startswith("imported 0 spans of 0 traces")
    # Nothing before the checkpoint is fetched again.
    assert not [r for r in langfuse.requests if r.startswith("/api/public/traces/")]
    langfuse.add("late-trace", "2025-06-01T12:30:00.000Z")
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    assert capsys.readouterr().out.startswith("imported 1 spans of 1 traces")
    lines = read(out)
    assert len(lines) == 12 and len({(x["trace_id"], x["span_id"]) for x in lines}) == 12


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
        assert target.stats.spans == 5 and len(target.stats.traces) == 2 and target.stats.duplicates == 0
    first = "/api/public/traces/b5c8a2f0-3d4e-4f6a-9b1c-2d3e4f5a6b7c"
    assert first not in langfuse.requests  # the trace imported before the stop is not fetched again


def test_since_skips_older_traces(langfuse, tmp_path):
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, "--since", "2025-06-01T12:05:00Z", str(out)]) == 0
    assert {x[canonical.NAME] for x in read(out) if not x[canonical.PARENT_SPAN_ID]} == {"research", "empty-task"}


def test_wrong_keys_missing_keys_and_no_server_are_one_line(langfuse, tmp_path, capsys, monkeypatch):
    out = tmp_path / "traces.jsonl"
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-wrong")
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"halo: error: Langfuse at {langfuse.url} refused the credentials (401")
    monkeypatch.delenv("LANGFUSE_SECRET_KEY")
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 1
    assert capsys.readouterr().err.strip() == ("halo: error: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY "
                                               "(the project's API keys)")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SECRET)
    assert main(["import", "langfuse", "--host", "http://127.0.0.1:9", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("halo: error: cannot reach Langfuse at http://127.0.0.1:9")
    assert not out.exists()


def test_a_server_with_both_apis_is_read_through_v3(langfuse, tmp_path):
    assert main(["import", "langfuse", "--host", langfuse.url, str(tmp_path / "t.jsonl")]) == 0
    assert not [r for r in langfuse.requests if r.startswith(("/api/public/v2/", "/api/public/v3/"))]


def test_a_langfuse_with_neither_trace_api_is_one_line(langfuse, tmp_path, capsys):
    langfuse.v4 = True
    langfuse.missing = {"/api/public/v2/observations"}
    out = tmp_path / "t.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"halo: error: Langfuse at {langfuse.url} has neither GET /api/public/traces (v3) nor "
        "GET /api/public/v2/observations and /api/public/v3/scores (v4)")
    assert not out.exists()


def test_a_malformed_trace_is_skipped_and_counted(langfuse, tmp_path, capsys):
    langfuse.traces["run-2025-06-01-task-7"]["timestamp"] = "not a time"
    out = tmp_path / "traces.jsonl"
    assert main(["import", "langfuse", "--host", langfuse.url, str(out)]) == 0
    summary = capsys.readouterr().out
    assert "imported 10 spans of 2 traces" in summary
    assert "skipped 1: traces Langfuse returned that are not usable (e.g. run-2025-06-01-task-7:" in summary


def test_follow_imports_new_traces_as_they_appear(langfuse, tmp_path):
    out = tmp_path / "traces.jsonl"
    env = {"LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "import", "langfuse", "--host", langfuse.url,
                             "--follow", "--interval", "0.1", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    try:
        _wait_for(lambda: out.exists() and len(read(out)) == 11)
        langfuse.add("live-trace", "2025-06-01T12:40:00.000Z")
        _wait_for(lambda: len(read(out)) == 12)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "imported 12 spans of 4 traces" in stdout


def test_follow_waits_out_a_server_outage(langfuse, tmp_path):
    out = tmp_path / "traces.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "import", "langfuse", "--host", langfuse.url,
                             "--follow", "--interval", "0.1", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET})
    try:
        _wait_for(lambda: out.exists() and len(read(out)) == 11)
        langfuse.down = True
        _wait_for(lambda: langfuse.refused >= 10)  # two polls' worth of retries
        langfuse.add("after-outage", "2025-06-01T12:50:00.000Z")
        langfuse.down = False
        _wait_for(lambda: len(read(out)) == 12)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"halo import: Langfuse at {langfuse.url} answered 503 to GET /api/public/traces" in stderr
    assert "trying again in 1s" in stderr
    assert "imported 12 spans of 4 traces" in stdout


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
