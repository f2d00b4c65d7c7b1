"""`halo mcp`'s server: the trace tools over the Model Context Protocol, for coding agents.

The tools are the registry's (`halo_live.engine.tools.TOOLS`): the names,
descriptions and argument schemas the diagnostic agent and `halo tool` use,
each marked read-only; `run_code`, which runs the caller's Python in the
sandbox, only when the server was started with `allow_code`. A call validates its arguments with the tool's model
and runs on a worker thread against the live store, which first catches the
index up with the trace files (it only reads them, so the harness writing them
never waits). The answer is one text block of compact JSON within the server's
budget, the JSON `halo tool --budget N` prints, and its `_meta` says how
current the index is. A bad argument, an unknown id or a broken regex is a
tool error the client shows (`isError`), never a crashed server; a client that
goes away mid-call abandons only its own call.

    server = HaloMcpServer(store, budget=40_000)
    await server.serve_stdio()                 # or mount server.http_app(...) (engine/cli/mcp.py)
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import anyio
from mcp import types
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from halo_live import __version__
from halo_live.engine import budget as b
from halo_live.engine.store import ToolError, TraceStore
from halo_live.engine.tools import TOOLS, ToolSpec, execute, parse_arguments

SERVER_NAME = "halo-live"
DEFAULT_BUDGET_CHARS = 40_000  # 10K-20K tokens (hex ids are dense): under Claude Code's 25,000-token refusal
MAX_PARALLEL_CALLS = 4
META_KEY = "halo-live/index"  # the `_meta` entry of every answer: how current the index is
HTTP_PATH = "/mcp"
log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Live traces of an LLM agent harness (HALO JSONL, indexed as spans arrive). Every call
first catches the index up with the trace files, so a benchmark can still be running.
The loop:
1. get_dataset_overview: size, error signatures (error_taxonomy), sample_trace_ids,
   run_ids, in-progress traces. Then get_failure_report: signatures ranked by traces hit,
   each with an example trace and cause; tool error rates; slow and costly traces.
2. count_traces / query_traces with filters (has_errors, tool_names, agent_names,
   model_names, run_ids, complete, min_duration_ms, time bounds) to find the traces of
   one failure; regex_pattern scans raw spans, so narrow with the other filters first.
3. Read a trace: check raw_jsonl_bytes from query_traces; search_trace with a specific
   regex (the error text, a tool name) before view_trace on big traces; view_spans for
   the span ids a search found; search_span inside one huge span.
4. After the harness is changed and re-run with a new run id: compare_runs.
run_code, when offered, runs Python in a sandbox for arithmetic over many traces.
Answers fit a character budget; one that was cut carries next_offset (pass it back as
offset), remaining_count and budget_note. Cite trace ids in what you report."""


class StoreOpening:
    """The store, opened on a thread of its own so the server answers at once even while
    a big backlog is indexed; a call waits for it. `store` may also be an open store."""

    def __init__(self, store: TraceStore | Callable[[], TraceStore]) -> None:
        self._future: Future[TraceStore] = Future()
        if isinstance(store, TraceStore):
            self._future.set_result(store)
            return
        self._opener = store
        threading.Thread(target=self._open, name="halo-mcp-open", daemon=True).start()

    def _open(self) -> None:
        try:
            self._future.set_result(self._opener())
        except BaseException as exc:  # handed to every call, which reports it
            self._future.set_exception(exc)

    def get(self) -> TraceStore:
        """The store (waits while it is being opened); ToolError if it could not be opened."""
        try:
            return self._future.result()
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"the trace index could not be opened: {exc}") from exc

    def close(self) -> None:
        """Close the store if it was opened (one still opening is left to the process's exit)."""
        if self._future.done() and self._future.exception() is None:
            self._future.result().close()


class StaticTokenVerifier:
    """The SDK's bearer-token check (`TokenVerifier`) against the one token `halo mcp` was given."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="halo-mcp", scopes=[])
        return None


class HaloMcpServer:
    """The registry's tools as an MCP server (the SDK's low-level `Server`) over one store."""

    def __init__(self, store: TraceStore | Callable[[], TraceStore], *, budget: int = DEFAULT_BUDGET_CHARS,
                 allow_code: bool = False, max_parallel: int = MAX_PARALLEL_CALLS) -> None:
        self.budget = b.check_budget(budget)
        self.specs = {name: spec for name, spec in TOOLS.items() if allow_code or not spec.needs_permission}
        self._store = StoreOpening(store)
        self._max_parallel = max_parallel
        self._limiter: anyio.CapacityLimiter | None = None
        self.server: Server[Any] = Server(
            SERVER_NAME, version=__version__, title="halo-live traces",
            description="HALO trace tools over a live index of agent traces",
            instructions=INSTRUCTIONS,
            get_tool_input_schema=lambda name: self.specs[name].json_schema() if name in self.specs else None,
            on_list_tools=self._list_tools, on_call_tool=self._call_tool,
        )

    def close(self) -> None:
        self._store.close()

    # --- tools -------------------------------------------------------------------------

    @staticmethod
    def tool(spec: ToolSpec) -> types.Tool:
        """One registry entry as an MCP tool: its schema as is, read-only and repeatable."""
        return types.Tool(
            name=spec.name, title=spec.title, description=spec.description,
            input_schema=spec.json_schema(),
            annotations=types.ToolAnnotations(title=spec.title, read_only_hint=True, destructive_hint=False,
                                              idempotent_hint=True, open_world_hint=False),
        )

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[self.tool(spec) for spec in self.specs.values()])

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if self._limiter is None:  # created in the event loop that serves
            self._limiter = anyio.CapacityLimiter(self._max_parallel)
        try:
            # abandon_on_cancel: a client that cancels or vanishes frees its request at once;
            # the worker finishes the read on its own and its answer is dropped
            return await anyio.to_thread.run_sync(self.call, params.name, params.arguments,
                                                  limiter=self._limiter, abandon_on_cancel=True)
        except Exception as exc:  # the last guard: never a crashed server
            log.exception("halo mcp: %s failed", params.name)
            return _error(f"{params.name} failed: {type(exc).__name__}: {exc}")

    def call(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """One tool call, run to its answer (blocking; the server runs it on a worker thread)."""
        spec = self.specs.get(name)
        if spec is None:
            if name in TOOLS:  # run_code, on a server not started with --allow-code
                return _error(f"{name} runs code and is off on this server (halo mcp ... --allow-code)")
            return _error(f"unknown tool {name!r}; tools: {', '.join(self.specs)}")
        try:
            parsed = parse_arguments(spec, arguments or {})
            store = self._store.get()
            answer = execute(store, spec, parsed, self.budget)
            status = store.index_status()
        except ToolError as exc:
            return _error(str(exc))
        return types.CallToolResult(content=[types.TextContent(type="text", text=b.compact(answer))],
                                    _meta={META_KEY: status})

    # --- transports ----------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        """Serve one client over this process's stdin and stdout until it closes them."""
        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())

    def http_app(self, *, host: str, token: str | None) -> Any:
        """The streamable HTTP app (Starlette) at `/mcp`; with `token`, a request without
        `Authorization: Bearer TOKEN` gets 401. On a loopback `host` the SDK also refuses
        other Host and Origin headers (DNS rebinding)."""
        auth = verifier = None
        if token:
            # No OAuth server: the issuer is never advertised without a provider or a resource URL.
            auth = AuthSettings(issuer_url="http://127.0.0.1", resource_server_url=None)
            verifier = StaticTokenVerifier(token)
        return self.server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host, auth=auth,
                                               token_verifier=verifier)


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)
