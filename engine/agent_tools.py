"""The agent's function tools: the trace tools, `synthesize_traces`, `final_answer`, and
with `--repo-path` the code and git tools (`engine.agent_code_tools`).

Each trace tool is the registry's tool (`engine.tools.TOOLS`) called through
`run_tool` with the model's JSON arguments, so the agent gets exactly what
`halo tool` prints. A bad argument or an unexpected failure comes back as
`{"error": ...}` the model can read and correct; it never ends the run.
"""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext
from agents.tracing import SpanError, get_current_span
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.agent_prompts import SYNTHESIS_INSTRUCTIONS
from engine.agent_runtime import AgentRuntime, dumps, one_shot

FINAL_ANSWER = "final_answer"
SYNTHESIZE = "synthesize_traces"
# Per-trace share of a synthesis prompt (the reference renders 8 KB per trace).
SYNTHESIS_TRACE_CHARS = 12_000
SYNTHESIS_MAX_TRACES = 20
# A tool call that takes longer than this is answered with an error, not a hang.
TOOL_TIMEOUT_SECONDS = 300.0


class FinalAnswerArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(description="The complete final answer, in markdown.")


class SynthesizeTracesArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trace_ids: list[str] = Field(
        min_length=1, max_length=SYNTHESIS_MAX_TRACES,
        description="Ids of traces to summarise (ids seen in earlier tool results).",
    )
    focus: str | None = Field(default=None, description="What the summary should focus on.")


# Tool calls of the agent whose run this task belongs to (a subagent sets its own, and
# the SDK's tool tasks inherit it), so each agent reports its own count.
agent_tool_calls: ContextVar[list[int] | None] = ContextVar("halo_agent_tool_calls", default=None)
# The id of that agent ("" for the root), so interleaved steps of parallel subagents are told apart.
agent_label: ContextVar[str] = ContextVar("halo_agent_label", default="")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _error_text(exc: ValidationError) -> str:
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


def _timed_tool(runtime: AgentRuntime, depth: int, name: str, description: str,
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


def trace_tools(runtime: AgentRuntime, depth: int) -> list[FunctionTool]:
    """The registry's trace tools, as function tools of an agent at `depth`."""
    from engine.tools import TOOLS, run_tool

    tools = []
    for spec in TOOLS.values():
        async def body(arguments: str, _name: str = spec.name) -> dict:
            return await runtime.call_in_worker(run_tool, runtime.store, _name, arguments)

        tools.append(_timed_tool(
            runtime, depth, spec.name, spec.description, _schema(spec.arguments_model), body
        ))
    return tools


def repo_tools(runtime: AgentRuntime, depth: int, repos) -> list[FunctionTool]:
    """The code tools (and git tools in a git work tree) when the run has `--repo-path`.

    `repos` is an `engine.agent_code_tools.Repos` or None (then nothing is offered).
    """
    if repos is None:
        return []
    from engine.agent_code_tools import repo_function_tools

    return repo_function_tools(runtime, depth, repos)


def final_answer_tool(runtime: AgentRuntime) -> FunctionTool:
    """Root-only: ends the run (`StopAtTools`); its output is the final answer."""

    async def invoke(ctx: ToolContext[Any], arguments: str) -> str:
        try:
            args = FinalAnswerArguments.model_validate_json(arguments or "{}")
        except ValidationError as exc:
            # Tolerate a bare string or a differently named field rather than lose the answer.
            try:
                raw = json.loads(arguments)
            except ValueError:
                raw = arguments
            if isinstance(raw, dict) and len(raw) == 1:
                return str(next(iter(raw.values())))
            if isinstance(raw, str) and raw.strip():
                return raw
            return dumps({"error": _error_text(exc)})
        return args.answer

    return FunctionTool(
        name=FINAL_ANSWER,
        description=(
            "Deliver your complete final answer (markdown) and end the run. Call it exactly "
            "once, when the analysis is done."
        ),
        params_json_schema=_schema(FinalAnswerArguments),
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )


async def _render_trace(runtime: AgentRuntime, trace_id: str) -> str | None:
    """One trace as compact JSON for the synthesis prompt, head-capped; None if unknown."""
    from engine.tools import run_tool

    view = await runtime.call_in_worker(
        run_tool, runtime.store, "view_trace", {"trace_id": trace_id}
    )
    if "error" in view:
        return None
    text = dumps(view)
    if len(text) > SYNTHESIS_TRACE_CHARS:
        text = text[:SYNTHESIS_TRACE_CHARS] + f" [halo truncated: original {len(text)} chars]"
    return f"## trace {trace_id}\n{text}"


def synthesize_tool(runtime: AgentRuntime, depth: int) -> FunctionTool:
    """Summarise several traces with the synthesis model, outside the caller's context."""

    async def body(arguments: str) -> dict:
        try:
            args = SynthesizeTracesArguments.model_validate_json(arguments)
        except ValidationError as exc:
            return {"error": _error_text(exc)}
        ids = list(dict.fromkeys(args.trace_ids))
        parts = [f"trace_ids: {', '.join(ids)}"]
        if args.focus:
            parts.append(f"focus: {args.focus}")
        unknown = []
        for trace_id in ids:
            rendered = await _render_trace(runtime, trace_id)
            if rendered is None:
                unknown.append(trace_id)
            else:
                parts.append(rendered)
        if len(unknown) == len(ids):  # spare the model call: nothing to summarise
            return {"error": f"no such trace ids: {', '.join(unknown)}; use ids from tool results"}
        if unknown:
            parts.append(f"(not found, ignore: {', '.join(unknown)})")
        summary = await one_shot(
            runtime, role="synthesis", instructions=SYNTHESIS_INSTRUCTIONS, text="\n\n".join(parts)
        )
        result = {"summary": summary}
        if unknown:
            result["unknown_trace_ids"] = unknown
        return result

    return _timed_tool(
        runtime, depth, SYNTHESIZE,
        "Summarise several traces (what they attempted, how they ended, shared failure "
        "patterns) without reading them into your own context. Pass real trace ids.",
        _schema(SynthesizeTracesArguments), body, timeout=None,
    )
