"""Fixtures for the agent and `halo TRACE_PATH -p` tests.

`write_traces` writes a small canonical dataset (three traces, one failing
with a tool error). `RolePolicy` plays a separate script per agent role (root,
subagent, synthesis, compaction), told apart by their instructions, so the
interleaved calls of parallel subagents stay deterministic. Script steps may
be callables that read earlier tool results from the turn's messages, as a
real model does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from halo_live.demo.model_server import ModelServer, Reply, ToolCall, Turn
from halo_live.exporter.canonical import (
    INF_AGENT_NAME,
    INF_LLM_MODEL_NAME,
    INF_OBSERVATION_KIND,
    INF_PROJECT_ID,
    INF_SCHEMA_VERSION,
    SERVICE_NAME,
    SPAN_KIND_INTERNAL,
    STATUS_ERROR,
    STATUS_OK,
    canonical_line,
    encode_line,
    iso_from_ns,
)

BASE_NS = 1_767_225_600 * 1_000_000_000
TRACE_IDS = [f"{i:032x}" for i in (0xA1, 0xB2, 0xC3)]
FAILING_TRACE = TRACE_IDS[1]


def _line(trace_id: str, span_id: str, parent: str, name: str, start_s: int, kind: str,
          *, status: str = STATUS_OK, message: str = "", extra: dict | None = None) -> bytes:
    attrs = {INF_SCHEMA_VERSION: 1, INF_PROJECT_ID: "p", INF_OBSERVATION_KIND: kind,
             INF_AGENT_NAME: "coder", **(extra or {})}
    return encode_line(canonical_line(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
        kind=SPAN_KIND_INTERNAL, start_time=iso_from_ns(BASE_NS + start_s * 10**9),
        end_time=iso_from_ns(BASE_NS + (start_s + 1) * 10**9),
        status_code=status, status_message=message,
        resource_attributes={SERVICE_NAME: "bench"},
        scope_name="test", scope_version="1", attributes=attrs,
    ))


def write_traces(path: Path, *, payload_chars: int = 200) -> Path:
    """Three small traces; the second has a failing `read_file` tool call."""
    lines = []
    for n, trace_id in enumerate(TRACE_IDS):
        root, llm, tool = f"{n:04x}000000000001", f"{n:04x}000000000002", f"{n:04x}000000000003"
        failing = trace_id == FAILING_TRACE
        lines.append(_line(trace_id, llm, root, "generation", n * 10 + 1, "LLM",
                           extra={INF_LLM_MODEL_NAME: "gpt-4.1", "output.value": "x" * payload_chars}))
        lines.append(_line(
            trace_id, tool, root, "read_file", n * 10 + 2, "TOOL",
            status=STATUS_ERROR if failing else STATUS_OK,
            message="FileNotFoundError: no such file: /tmp/missing" if failing else "",
        ))
        lines.append(_line(trace_id, root, "", "task", n * 10, "AGENT"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


# --- the scripted model ------------------------------------------------------------------

Step = Reply | Callable[[Turn], Reply]


def role_of(turn: Turn) -> str:
    text = turn.instructions or ""
    if "root diagnostic agent" in text:
        return "root"
    if "halo subagent" in text:
        return "sub"
    if "summarise a set of agent traces" in text:
        return "synthesis"
    if "compress one tool result" in text:
        return "compaction"
    return "other"


class RolePolicy:
    """One script per role; a role that runs out of steps answers `"<role> done"`."""

    def __init__(self, **scripts: Sequence[Step]) -> None:
        self.scripts = {role: list(steps) for role, steps in scripts.items()}
        self.seen: dict[str, list[Turn]] = {}
        self._lock = threading.Lock()

    def __call__(self, turn: Turn) -> Reply:
        role = role_of(turn)
        with self._lock:
            self.seen.setdefault(role, []).append(turn)
            steps = self.scripts.get(role, [])
            step = steps.pop(0) if steps else Reply(text=f"{role} done")
        return step(turn) if callable(step) else step


def tool_results(turn: Turn, name: str | None = None) -> list[Any]:
    """Parsed results of the tool calls in `turn`'s history (of tool `name` if given)."""
    names = {}
    for message in turn.messages:
        for call in message.get("tool_calls") or []:
            fn = call.get("function", call)
            names[call.get("id")] = fn.get("name")
    results = []
    for message in turn.messages:
        if message.get("role") != "tool":
            continue
        if name is not None and names.get(message.get("tool_call_id")) != name:
            continue
        content = message.get("content") or ""
        try:
            results.append(json.loads(content))
        except ValueError:
            results.append(content)
    return results


def sample_ids(turn: Turn) -> list[str]:
    """`sample_trace_ids` from the overview the model has read (fails the test if none)."""
    for result in tool_results(turn, "get_dataset_overview"):
        return result["result"]["sample_trace_ids"]
    raise AssertionError("the model had not seen a dataset overview")


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name, json.dumps(arguments))


def halo_args(trace_path: Path, server, *extra: str, prompt: str = "what fails and why?") -> list[str]:
    return [str(trace_path), "-p", prompt, "--base-url", server.base_url, "--api-key", "test",
            "-m", "test-model", *extra]


# --- a connection that dies mid-stream -------------------------------------------------


class CuttingProxy(ModelServer):
    """An HTTP proxy in front of a ModelServer that records request headers and cuts the
    n-th streamed answer after its first bytes, as a dropped connection does (the model
    server itself never fails mid-stream). Reuses ModelServer's thread and lifecycle."""

    def __init__(self, target_base_url: str, *, cut: set[int], keep_bytes: int = 600) -> None:
        super().__init__(policy=lambda turn: Reply(text="unused"))
        self.target = target_base_url.rsplit("/v1", 1)[0]
        self.cut = cut
        self.keep_bytes = keep_bytes
        self.requests = 0
        self.headers: list[dict[str, str]] = []  # of every request, as received

    async def _start_site(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _forward(self, request):
        import aiohttp
        from aiohttp import web

        self.requests += 1
        number = self.requests
        self.headers.append(dict(request.headers))
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.target + request.path, data=body, headers=headers) as up:
                response = web.StreamResponse(status=up.status, headers={
                    "Content-Type": up.headers.get("Content-Type", "application/json")})
                await response.prepare(request)
                sent = 0
                async for chunk in up.content.iter_any():
                    if number in self.cut and sent + len(chunk) > self.keep_bytes:
                        await response.write(chunk[: max(0, self.keep_bytes - sent)])
                        request.transport.close()  # the connection drops mid-answer
                        return response
                    await response.write(chunk)
                    sent += len(chunk)
                await response.write_eof()
                return response
