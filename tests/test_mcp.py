"""`halo mcp`: the registry's tools over MCP, tested with the official SDK's own client.

In process (the SDK connects a `Client` straight to the server object, in both
the current and the handshake-era protocol), as a stdio subprocess while
another process appends spans, and over streamable HTTP with and without the
bearer token. Every answer fits the budget, pages to the end with its cursor,
and equals what `halo tool` prints for the same arguments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from halo_live.cli import main
from halo_live.engine.budget import compact
from halo_live.engine.mcp_server import DEFAULT_BUDGET_CHARS, META_KEY, HaloMcpServer
from halo_live.engine.tools import TOOLS, open_store, run_tool
from tests import _tools_helpers as gen

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60
OFFERED = [name for name, spec in TOOLS.items() if not spec.needs_permission]  # all but run_code


# --- helpers -------------------------------------------------------------------------------


def answer(result) -> dict[str, Any]:
    """The JSON of a successful call."""
    assert not result.is_error, result.content[0].text
    assert len(result.content) == 1 and result.content[0].type == "text"
    return json.loads(result.content[0].text)


def in_process(server: HaloMcpServer, body: Callable[[Client], Any], mode: str = "auto") -> Any:
    async def go():
        async with Client(server.server, mode=mode) as client:
            return await body(client)
    return anyio.run(go)


def next_offset(tool: str, args: dict, result: dict) -> int | None:
    """Where the cursor goes next, or None at the end."""
    if "next_offset" in result:
        return result["next_offset"]
    offset = args.get("offset", 0)
    if tool.startswith("search") and result["has_more"]:
        return offset + result["returned_match_count"]
    if tool == "query_traces" and offset + len(result["traces"]) < result["total"]:
        return offset + len(result["traces"])
    return None


async def walk(client: Client, tool: str, args: dict, budget: int) -> list[dict]:
    """Every page of one call, following the cursor; each page's text within `budget`."""
    pages = []
    while True:
        result = await client.call_tool(tool, args)
        assert len(result.content[0].text) <= budget, (tool, args, len(result.content[0].text))
        pages.append(answer(result)["result"])
        offset = next_offset(tool, args, pages[-1])
        if offset is None:
            return pages
        assert offset > args.get("offset", 0), "a cursor that does not move"
        args = {**args, "offset": offset}


ITEMS = {"query_traces": "traces", "view_trace": "spans", "view_spans": "spans",
         "search_trace": "matches", "search_span": "matches"}


def item_keys(tool: str, items: list[dict]) -> list:
    if tool == "query_traces":
        return [t["trace_id"] for t in items]
    if tool.startswith("view"):
        return [s["span_id"] for s in items]
    return [(m["span_id"], m["match_start_char"], m["match_end_char"]) for m in items]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    lines = gen.generate(20, seed=41, big_every=7, incomplete_every=6, run_id="run-a") + \
        gen.generate(8, seed=42, first=50, run_id="run-b")
    return gen.write(tmp_path / "small.jsonl", lines)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, list[bytes], str]:
    """The 2k-trace set plus one trace of 500 failed tool calls (its id is returned)."""
    lines = gen.generate(2000, seed=1, big_every=97, incomplete_every=50, run_id="run-1") + gen.error_trace(500)
    path = gen.write(tmp_path_factory.mktemp("big") / "traces.jsonl", lines)
    return path, lines, json.loads(lines[-1])["trace_id"]


# --- the tools, in process -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_lists_every_registry_tool_as_is_and_read_only(small, mode):
    with open_store(small) as store:
        server = HaloMcpServer(store)

        async def body(client):
            return (await client.list_tools()).tools, client.server_capabilities

        tools, capabilities = in_process(server, body, mode)
    assert capabilities.tools is not None
    assert [t.name for t in tools] == OFFERED
    for tool in tools:
        spec = TOOLS[tool.name]
        assert tool.description == spec.description and tool.title == spec.title
        assert tool.input_schema == spec.json_schema()  # the registry's schema, not a second copy
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        assert tool.annotations.open_world_hint is False


def _calls(path: Path) -> list[tuple[str, dict]]:
    with open_store(path) as store:
        ids = [t["trace_id"] for t in run_tool(store, "query_traces", {"limit": 500})["result"]["traces"]]
    span = next(json.loads(line) for line in path.read_bytes().splitlines()
                if json.loads(line)["trace_id"] == ids[0])
    return [
        ("get_dataset_overview", {}),
        ("get_dataset_overview", {"filters": {"has_errors": True, "run_ids": ["run-a"]}}),
        ("query_traces", {"limit": 5, "filters": {"complete": False}}),
        ("count_traces", {"filters": {"tool_names": ["web_search"]}}),
        ("view_trace", {"trace_id": ids[0]}),
        ("view_spans", {"trace_id": ids[0], "span_ids": [span["span_id"]]}),
        ("search_trace", {"trace_id": ids[0], "regex_pattern": "tool\\.\\w+", "max_matches": 3}),
        ("search_span", {"trace_id": ids[0], "span_id": span["span_id"], "regex_pattern": "\\w+"}),
        ("get_failure_report", {"top": 3}),
        ("compare_runs", {"run_before": "run-a", "run_after": "run-b"}),
    ]


def test_calls_each_tool_and_answers_as_run_tool_with_the_budget(small):
    calls = _calls(small)
    assert {name for name, _ in calls} == set(OFFERED)
    with open_store(small) as store:
        server = HaloMcpServer(store)

        async def body(client):
            return [await client.call_tool(name, args) for name, args in calls]

        results = in_process(server, body)
        for (name, args), result in zip(calls, results, strict=True):
            assert answer(result) == run_tool(store, name, args, DEFAULT_BUDGET_CHARS), name
            status = result.meta[META_KEY]  # how current the index is, on every answer
            assert status["index_lag_bytes"] == 0 and status["spans_indexed"] == len(small.read_bytes().splitlines())
    overview = answer(results[0])["result"]
    assert overview["run_ids"] == ["run-a", "run-b"]
    compared = answer(results[-1])["result"]
    assert (compared["before"]["run_id"], compared["after"]["run_id"]) == ("run-a", "run-b")


def test_bad_calls_are_tool_errors_and_the_session_goes_on(small):
    with open_store(small) as store:
        trace_id = run_tool(store, "query_traces", {"limit": 1})["result"]["traces"][0]["trace_id"]
        server = HaloMcpServer(store)
        bad = [
            ("query_traces", {"limit": 0}, "invalid arguments for query_traces: limit"),
            ("query_traces", {"filters": {"nope": 1}}, "filters.nope: Extra inputs are not permitted"),
            ("view_trace", {}, "trace_id: Field required"),
            ("view_trace", {"trace_id": "no-such-trace"}, "unknown trace_id 'no-such-trace'"),
            ("search_trace", {"trace_id": trace_id, "regex_pattern": "(unclosed"}, "Invalid regex pattern"),
            ("count_traces", {"filters": {"regex_pattern": "*"}}, "Invalid regex pattern"),
            ("count_traces", {"filters": {"start_time_gte": "yesterday"}}, "must be an ISO-8601 time"),
            ("search_span", {"trace_id": trace_id, "span_id": "x", "regex_pattern": "a"}, "span_id='x' not found"),
            ("compare_runs", {"run_before": "run-a", "run_after": "run-z"}, "run 'run-z' is not in"),
            ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
        ]

        async def body(client):
            got = [await client.call_tool(name, args) for name, args, _ in bad]
            return got, await client.call_tool("count_traces", {})

        results, after = in_process(server, body)
    for (name, _, said), result in zip(bad, results, strict=True):
        assert result.is_error, name
        assert said in result.content[0].text, (name, result.content[0].text)
    assert answer(after)["result"]["total"] == 28


def test_run_code_only_when_the_server_allows_it(small):
    args = {"code": "count_traces()['total'] * 2"}
    with open_store(small) as store:
        def body(client):
            async def go():
                names = [t.name for t in (await client.list_tools()).tools]
                return names, await client.call_tool("run_code", args)
            return go()

        names, refused = in_process(HaloMcpServer(store), body)
        assert "run_code" not in names
        assert refused.is_error and "--allow-code" in refused.content[0].text
        names, ran = in_process(HaloMcpServer(store, allow_code=True), body)
        assert names == list(TOOLS)
        got = answer(ran)["result"]
        direct = run_tool(store, "run_code", args, DEFAULT_BUDGET_CHARS, allow_code=True)["result"]
        assert got["value"] == 56
        assert {**got, "elapsed_ms": 0} == {**direct, "elapsed_ms": 0}


def test_a_cancelled_call_leaves_the_session_working(big):
    path, _, _ = big
    with open_store(path) as store:
        server = HaloMcpServer(store)

        async def body(client):
            with anyio.move_on_after(0.05):  # a full regex scan of 33 MB, given up on
                await client.call_tool("count_traces", {"filters": {"regex_pattern": "zz-never-zz"}})
            return await client.call_tool("count_traces", {})

        assert answer(in_process(server, body))["result"]["total"] == 2001


def test_a_store_that_cannot_open_is_an_error_result(tmp_path):
    def broken():
        raise OSError("disk on fire")

    server = HaloMcpServer(broken)
    result = in_process(server, lambda client: client.call_tool("count_traces", {}))
    assert result.is_error and "the trace index could not be opened: disk on fire" in result.content[0].text


# --- budgets and cursors on the 2k-trace set ----------------------------------------------------


def test_every_answer_fits_and_pages_to_the_end(big):
    """Every tool on the 2k-trace set and on the trace of 500 error matches stays within the
    budget, and its cursor reaches every item of the unbounded answer, in order; again at a tight
    budget where views page and the report is cut."""
    path, lines, error_trace = big
    spans: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for line in lines:
        span = json.loads(line)
        spans.setdefault(span["trace_id"], []).append(span["span_id"])
        sizes[span["trace_id"]] = sizes.get(span["trace_id"], 0) + len(line)
    traces = list(spans)
    biggest = max((t for t in traces if sizes[t] < 150_000), key=sizes.get)  # big, but no oversized view
    errors = {"trace_id": error_trace, "regex_pattern": "STATUS_CODE_ERROR", "max_matches": 500}
    paged_calls = [
        ("query_traces", {"limit": 500}),
        ("query_traces", {"limit": 500, "filters": {"has_errors": True}}),
        ("search_trace", errors),
        ("search_trace", {**errors, "regex_pattern": "TimeoutError|FileNotFound", "context_buffer_chars": 2000}),
        ("search_span", {"trace_id": error_trace, "span_id": spans[error_trace][0], "regex_pattern": "p",
                         "max_matches": 500, "context_buffer_chars": 300}),
        ("search_trace", {"trace_id": biggest, "regex_pattern": "needle|é+", "max_matches": 500}),
        ("view_trace", {"trace_id": error_trace}),  # over the reference's view budget: its summary
        ("view_spans", {"trace_id": error_trace, "span_ids": spans[error_trace][:100]}),
        ("view_trace", {"trace_id": biggest}),
    ] + [("view_trace", {"trace_id": t}) for t in traces[::50]] + \
        [("view_spans", {"trace_id": t, "span_ids": spans[t][:200]}) for t in traces[::200]]
    whole_calls = [("get_dataset_overview", {}), ("get_failure_report", {"top": 100}),
                   ("count_traces", {"filters": {"has_errors": True}}),
                   ("compare_runs", {"run_before": "run-1", "run_after": "run-1"})]
    tight = 6_000
    tight_calls = [c for c in paged_calls[:1] + paged_calls[2:]  # less walking: one query, narrow contexts
                   if c[0] != "search_trace" or "context_buffer_chars" not in c[1]]
    with open_store(path) as store:
        for budget, calls in ((DEFAULT_BUDGET_CHARS, paged_calls), (tight, tight_calls)):
            unbounded = [run_tool(store, name, args, 10**12)["result"] for name, args in calls]
            server = HaloMcpServer(store, budget=budget)

            async def body(client):
                walks = [await walk(client, name, args, budget) for name, args in calls]
                wholes = [await client.call_tool(name, args) for name, args in whole_calls]
                return walks, wholes

            walks, wholes = in_process(server, body)
            for (name, args), full, pages in zip(calls, unbounded, walks, strict=True):
                if full.get("oversized"):  # over the reference's own budget: its summary, as is
                    assert pages == [full]
                    continue
                key = ITEMS[name]
                got = item_keys(name, [item for page in pages for item in page[key]])
                if name == "query_traces":  # each page of 500 from its offset: all traces, once each
                    assert got[:len(full[key])] == item_keys(name, full[key])
                    assert len(got) == len(set(got)) == full["total"]
                else:
                    assert got == item_keys(name, full[key]), (name, args)
            for (name, _), result in zip(whole_calls, wholes, strict=True):
                assert len(result.content[0].text) <= budget, name
                answer(result)
            by_call = {json.dumps(c, sort_keys=True): w for c, w in zip(calls, walks)}
            assert len(by_call[json.dumps(("search_trace", errors), sort_keys=True)]) > 1  # 500 matches page
            assert len(by_call[json.dumps(paged_calls[7], sort_keys=True)]) > 1  # 100 spans page
        assert "budget_note" in answer(wholes[1])["result"]  # the tight budget cut the report


def test_a_span_too_big_for_the_budget_is_cut_to_heads_not_dropped(big):
    path, lines, _ = big
    needles: dict[str, list[str]] = {}
    for line in lines:
        if b"the needle" in line:  # an LLM span with 8 attributes over the 4 KB head cap
            span = json.loads(line)
            needles.setdefault(span["trace_id"], []).append(span["span_id"])
    trace_id, (fat,) = next((t, ids) for t, ids in needles.items() if len(ids) == 1)
    with open_store(path) as store:
        server = HaloMcpServer(store, budget=6_000)
        pages = in_process(server, lambda c: walk(c, "view_trace", {"trace_id": trace_id}, 6_000))
    page = next(p for p in pages if fat in [s["span_id"] for s in p["spans"]])
    assert [s["span_id"] for s in page["spans"]] == [fat]  # alone on its page, never skipped
    assert f"span {fat}: attribute values cut to" in page["budget_note"]
    output = page["spans"][0]["attributes"]["output.value"]
    assert output.endswith("... [HALO truncated: original 50012 chars]") and len(output) < 4096


# --- the same answers as `halo tool` ---------------------------------------------------------------


def test_answers_equal_halo_tools_for_the_same_arguments(small, big, capsys):
    path, _, error_trace = big
    cases = [(small, name, args) for name, args in _calls(small)] + [
        (path, "search_trace", {"trace_id": error_trace, "regex_pattern": "STATUS_CODE_ERROR",
                                "max_matches": 500, "offset": 37}),
        (path, "query_traces", {"limit": 500, "offset": 100}),
        (path, "view_trace", {"trace_id": error_trace, "offset": 3}),
    ]
    for dataset, name, args in cases:
        assert main(["tool", name, str(dataset), "--args", json.dumps(args), "--budget",
                     str(DEFAULT_BUDGET_CHARS)]) == 0
        printed = json.loads(capsys.readouterr().out)
        with open_store(dataset) as store:
            result = in_process(HaloMcpServer(store), lambda c: c.call_tool(name, args))
        assert answer(result) == printed, name


# --- stdio: a subprocess that follows the file ------------------------------------------------------

_APPENDER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests import _tools_helpers as gen
for burst in range(4):
    gen.write(Path({path!r}), gen.generate(5, seed=70 + burst, first=1000 + 10 * burst), append=True)
    time.sleep(0.3)
"""


def test_stdio_subprocess_answers_while_another_process_appends(tmp_path):
    path = gen.write(tmp_path / "live.jsonl", gen.generate(10, seed=60))
    params = StdioServerParameters(command=sys.executable, args=["-m", "halo_live", "mcp", str(path)],
                                   cwd=str(tmp_path))

    async def go():
        seen = []
        async with Client(params, mode="legacy") as client:  # the handshake coding agents speak
            assert [t.name for t in (await client.list_tools()).tools] == OFFERED
            seen.append(answer(await client.call_tool("count_traces", {}))["result"]["total"])
            appender = subprocess.Popen([sys.executable, "-c", _APPENDER.format(root=str(ROOT), path=str(path))])
            try:
                while appender.poll() is None:
                    seen.append(answer(await client.call_tool("count_traces", {}))["result"]["total"])
                    await anyio.sleep(0.05)
            finally:
                assert appender.wait(timeout=30) == 0
            last = await client.call_tool("get_dataset_overview", {})
            seen.append(answer(last)["result"]["total_traces"])
            return seen, last.meta[META_KEY]

    seen, status = anyio.run(go)
    assert seen[0] == 10 and seen[-1] == 30
    assert seen == sorted(seen) and len(set(seen)) > 2  # it saw the file grow, burst by burst
    assert status["index_lag_bytes"] == 0 and status["spans_indexed"] == len(path.read_bytes().splitlines())


def test_stdio_client_vanishing_mid_call_ends_the_server_cleanly(big):
    path, _, _ = big
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "mcp", str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(message: dict) -> None:
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "t", "version": "0"}}})
        assert json.loads(proc.stdout.readline())["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
              "params": {"name": "count_traces", "arguments": {"filters": {"regex_pattern": "zz-never-zz"}}}})
        proc.stdin.close()  # the client is gone, its call still running
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- streamable HTTP -----------------------------------------------------------------------------


class HttpServer:
    """`python -m halo_live mcp PATH --http 127.0.0.1:0 ...`; reads its URL from stderr."""

    def __init__(self, path: Path, *extra: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "halo_live", "mcp", str(path), "--http", "127.0.0.1:0", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        deadline = time.monotonic() + STARTUP_TIMEOUT
        self.url = ""
        for line in self.proc.stderr:
            if m := re.search(r"at (http://\S+/mcp)", line):
                self.url = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        assert self.url, self.proc.stderr.read()

    def stop(self) -> int:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode


async def _http_call(url: str, token: str | None, tool: str, args: dict) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            return answer(await client.call_tool(tool, args))


def test_http_wants_the_token_and_answers_with_it(small):
    server = HttpServer(small, "--token", "s3cret")
    try:
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "t", "version": "0"}}}
        accept = {"Accept": "application/json, text/event-stream"}
        for auth in (None, "Bearer wrong", "Bearer s3cret-and-more", "Basic czNjcmV0"):
            headers = {**accept, **({"Authorization": auth} if auth else {})}
            response = httpx2.post(server.url, json=initialize, headers=headers, timeout=10)
            assert response.status_code == 401, auth
            assert response.headers["www-authenticate"].startswith("Bearer")
        with pytest.raises(Exception):  # the SDK's client, without the token, does not get in
            anyio.run(_http_call, server.url, None, "count_traces", {})
        got = anyio.run(_http_call, server.url, "s3cret", "count_traces", {})
        assert got == {"result": {"total": 28}}
    finally:
        assert server.stop() == 0  # SIGTERM: a clean stop


def test_http_token_from_the_environment(small):
    server = HttpServer(small, env={"HALO_MCP_TOKEN": "from-env"})
    try:
        assert httpx2.post(server.url, json={}, timeout=10).status_code == 401
        assert anyio.run(_http_call, server.url, "from-env", "count_traces", {}) == {"result": {"total": 28}}
    finally:
        server.stop()


def test_http_without_a_token_on_loopback_and_a_client_vanishing_mid_call(big):
    path, _, _ = big
    server = HttpServer(path)
    try:
        async def vanish():
            async with create_mcp_http_client() as http:
                async with Client(streamable_http_client(server.url, http_client=http)) as client:
                    with anyio.move_on_after(0.1):  # the client gives up and goes, mid-scan
                        await client.call_tool("count_traces", {"filters": {"regex_pattern": "zz-never-zz"}})

        anyio.run(vanish)
        assert server.proc.poll() is None  # still serving
        assert anyio.run(_http_call, server.url, None, "count_traces", {}) == {"result": {"total": 2001}}
    finally:
        server.stop()


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.1:8765"])
def test_refuses_to_listen_beyond_loopback_without_a_token(small, listen, capsys, monkeypatch):
    monkeypatch.delenv("HALO_MCP_TOKEN", raising=False)
    assert main(["mcp", str(small), "--http", listen]) == 2
    assert "without a token" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["--http", "nope"], "--http wants [HOST:]PORT"),
    (["--http", "70000"], "--http wants [HOST:]PORT"),
    (["--budget", "100"], "at least 4,000"),
])
def test_bad_options_are_one_line(small, argv, said, capsys):
    assert main(["mcp", str(small), *argv]) == 2
    assert said in capsys.readouterr().err


def test_a_missing_trace_path_fails_before_serving(tmp_path, capsys):
    assert main(["mcp", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such trace file or folder" in capsys.readouterr().err


def test_the_budget_comes_from_the_environment(small, monkeypatch, capsys):
    monkeypatch.setenv("HALO_MCP_BUDGET", "lots")
    assert main(["mcp", str(small)]) == 2
    assert "$HALO_MCP_BUDGET must be a number" in capsys.readouterr().err


def test_the_compact_text_is_what_the_budget_counts(small):
    with open_store(small) as store:
        result = in_process(HaloMcpServer(store), lambda c: c.call_tool("get_dataset_overview", {}))
    text = result.content[0].text
    assert text == compact(json.loads(text)) and ": " not in text[:200]


# --- the docs a coding agent reads ------------------------------------------------------------------


def test_the_skill_walks_every_tool_and_names_real_filters():
    from halo_live.engine.models import TraceFilters

    skill = (ROOT / "docs" / "mcp-skill.md").read_text(encoding="utf-8")
    assert re.match(r"---\nname: [a-z-]+\ndescription: .+\n---\n", skill)  # a loadable skill
    quoted = set(re.findall(r"`([a-z_]+)`", skill))
    assert set(OFFERED) <= quoted
    looks_like_a_tool = {w for w in quoted if re.match(r"(get|query|count|view|search|compare)_|run_code", w)}
    assert looks_like_a_tool <= set(TOOLS), looks_like_a_tool - set(TOOLS)
    step3 = skill.split("3. **Find the traces", 1)[1].split("4. **", 1)[0]
    filters = set(re.findall(r"`([a-z_]+)`", step3)) - set(TOOLS) - {"regex_pattern"}
    assert filters <= set(TraceFilters.model_fields), filters - set(TraceFilters.model_fields)


def test_the_readme_shows_each_coding_agent_its_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Coding agents: `halo mcp`", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^claude mcp add halo -- .+ mcp ", section, re.MULTILINE)
    assert "`.cursor/mcp.json`" in section and "`~/.codex/config.toml`" in section
    cursor = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    assert cursor["mcpServers"]["halo"]["args"][0] == "mcp"
    codex = section.split("```toml", 1)[1].split("```", 1)[0]
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return
    assert tomllib.loads(codex)["mcp_servers"]["halo"]["args"][0] == "mcp"
