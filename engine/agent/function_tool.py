"""The one wrapper that makes a tool body an SDK `FunctionTool` of the diagnostic agent.

Every tool the agent is offered (trace, synthesis, subagent, code and git
tools) goes through `timed_tool`, so each call is printed, counted against the
agent that made it, flagged on its SDK span when it fails, and never raises
into the run: the model reads `{"error": ...}` and corrects itself.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext
from agents.tracing import SpanError, get_current_span
from pydantic import ValidationError

from halo_live.engine.agent.runtime import AgentRuntime, dumps

# A tool call that takes longer than this is answered with an error, not a hang.
TOOL_TIMEOUT_SECONDS = 300.0

# Tool calls of the agent whose run this task belongs to (a subagent sets its own, and
# the SDK's tool tasks inherit it), so each agent reports its own count.
agent_tool_calls: ContextVar[list[int] | None] = ContextVar("halo_agent_tool_calls", default=None)
# The id of that agent ("" for the root), so interleaved steps of parallel subagents are told apart.
agent_label: ContextVar[str] = ContextVar("halo_agent_label", default="")


def error_text(exc: ValidationError) -> str:
    """A pydantic validation failure as one sentence the model can act on."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg')}")
    return "invalid arguments: " + "; ".join(parts)


def _mark_span_error(tool: str, message: str) -> None:
    """Flag the SDK's function span as failed, so `--telemetry` shows tool errors as errors."""
    span = get_current_span()
    if span is not None:
        span.set_error(SpanError(message=f"{tool}: {message[:500]}", data=None))


def timed_tool(runtime: AgentRuntime, depth: int, name: str, description: str,
               schema: dict[str, Any], body, *,
               timeout: float | None = TOOL_TIMEOUT_SECONDS) -> FunctionTool:
    """A FunctionTool that prints the call and its result and never raises into the run."""

    async def invoke(ctx: ToolContext[Any], arguments: str) -> str:
        who = agent_label.get()
        runtime.printer.tool_called(depth, name, arguments or "{}", who=who)
        runtime.stats.tool_calls += 1
        own = agent_tool_calls.get()
        if own is not None:
            own[0] += 1
        started = time.monotonic()
        try:
            result = await body(arguments or "{}")
        except Exception as exc:  # the model gets the error; the run goes on
            result = {"error": f"{name} failed: {type(exc).__name__}: {exc}"}
        if isinstance(result, dict) and "error" in result:
            runtime.stats.tool_errors += 1
            _mark_span_error(name, str(result["error"]))
        runtime.printer.tool_returned(depth, name, result, time.monotonic() - started, who=who)
        return result if isinstance(result, str) else dumps(result)

    return FunctionTool(
        name=name,
        description=description,
        params_json_schema=schema,
        on_invoke_tool=invoke,
        strict_json_schema=False,
        timeout_seconds=timeout,
    )
