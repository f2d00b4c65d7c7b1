"""The agent's function tools: the trace tools (`run_code` included), `synthesize_traces`,
`final_answer`, and with `--repo-path` the code and git tools
(`halo_live.engine.agent.code_tools`).

Each trace tool is the registry's tool (`halo_live.engine.tools.TOOLS`) called through
`run_tool` with the model's JSON arguments, so the agent gets exactly what
`halo tool` prints. A bad argument or an unexpected failure comes back as
`{"error": ...}` the model can read and correct; it never ends the run.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from halo_live.engine.agent.code_tools import Repos, repo_function_tools
from halo_live.engine.agent.function_tool import error_text, timed_tool
from halo_live.engine.agent.prompts import SYNTHESIS_INSTRUCTIONS
from halo_live.engine.agent.runtime import AgentRuntime, dumps, one_shot
from halo_live.engine.tools import TOOLS, run_tool

FINAL_ANSWER = "final_answer"
SYNTHESIZE = "synthesize_traces"
# Per-trace share of a synthesis prompt (the reference renders 8 KB per trace).
SYNTHESIS_TRACE_CHARS = 12_000
SYNTHESIS_MAX_TRACES = 20


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


def trace_tools(runtime: AgentRuntime, depth: int) -> list[FunctionTool]:
    """The registry's trace tools, as function tools of an agent at `depth`."""

    tools = []
    # The agent has `run_code` (sandboxed) unless the run turned it off.
    allowed = partial(run_tool, allow_code=runtime.settings.run_code)
    for spec in TOOLS.values():
        if spec.needs_permission and not runtime.settings.run_code:
            continue

        async def body(arguments: str, _name: str = spec.name,
                       _own_thread: bool = spec.needs_permission) -> dict:
            if _own_thread:
                # run_code may take its whole time limit: off the store's one worker thread, so
                # the other agents' tool calls go on meanwhile (TraceStore is thread-safe).
                return await asyncio.to_thread(allowed, runtime.store, _name, arguments)
            return await runtime.call_in_worker(allowed, runtime.store, _name, arguments)

        tools.append(timed_tool(
            runtime, depth, spec.name, spec.description, spec.json_schema(), body
        ))
    return tools


def repo_tools(runtime: AgentRuntime, depth: int, repos: Repos | None) -> list[FunctionTool]:
    """The code tools (and git tools in a git work tree) when the run has `--repo-path`;
    none when `repos` is None."""
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
            return dumps({"error": error_text(exc)})
        return args.answer

    return FunctionTool(
        name=FINAL_ANSWER,
        description=(
            "Deliver your complete final answer (markdown) and end the run. Call it exactly "
            "once, when the analysis is done."
        ),
        params_json_schema=FinalAnswerArguments.model_json_schema(),
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )


async def _render_trace(runtime: AgentRuntime, trace_id: str) -> str | None:
    """One trace as compact JSON for the synthesis prompt, head-capped; None if unknown."""
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
            return {"error": error_text(exc)}
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

    return timed_tool(
        runtime, depth, SYNTHESIZE,
        "Summarise several traces (what they attempted, how they ended, shared failure "
        "patterns) without reading them into your own context. Pass real trace ids.",
        SynthesizeTracesArguments.model_json_schema(), body, timeout=None,
    )
