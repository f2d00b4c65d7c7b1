"""`call_subagent`: delegate a self-contained question to a fresh agent.

Depth is enforced structurally: an agent at `--max-depth` is built without
the tool. Parallelism is capped per depth (`--max-parallel` slots each), so a
parent waiting on its children never holds the slots they need. A failed
subagent answers its parent with the failure instead of failing the run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from agents import Agent, FunctionTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from halo_live.engine.agent.code_tools import Repos
from halo_live.engine.agent.function_tool import agent_label, agent_tool_calls, error_text, timed_tool
from halo_live.engine.agent.runner import run_agent
from halo_live.engine.agent.runtime import AgentRuntime

CALL_SUBAGENT = "call_subagent"


class CallSubagentArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str = Field(
        min_length=1,
        description="A self-contained question for the subagent, with the trace ids it needs.",
    )


class SubagentResult(BaseModel):
    """What the parent reads back (the reference's fields that mean something here)."""

    child_agent_id: str
    answer: str
    turns_used: int
    tool_calls_made: int
    ok: bool = True


def subagent_tool(runtime: AgentRuntime, child_depth: int, *,
                  build_agent: Callable[..., Agent[Any]], repos: Repos | None = None) -> FunctionTool:
    """The `call_subagent` function tool of an agent at `child_depth - 1`.

    `build_agent(runtime, depth=, repos=)` builds the child (the builder is passed in
    because it builds this tool too); the child gets the same `repos` (code and git
    tools) as its parent, as in the reference.
    """
    settings = runtime.settings

    async def body(arguments: str) -> dict[str, Any]:
        try:
            args = CallSubagentArguments.model_validate_json(arguments)
        except ValidationError as exc:
            return {"error": error_text(exc)}
        if child_depth > settings.max_depth:  # defence in depth; the tool is not offered there
            return {"error": f"maximum depth {settings.max_depth} reached; answer yourself"}
        child_id = f"sub-{uuid.uuid4().hex[:8]}"
        async with runtime.semaphores[child_depth]:
            runtime.stats.subagents += 1
            runtime.printer.agent_started(child_depth, child_id, args.input)
            own_calls = [0]
            token = agent_tool_calls.set(own_calls)
            label_token = agent_label.set(child_id)
            agent = build_agent(runtime, depth=child_depth, repos=repos)
            try:
                outcome = await run_agent(
                    runtime, agent, args.input, depth=child_depth,
                    max_turns=settings.max_turns, is_root=False,
                )
            except Exception as exc:
                message = f"Subagent failed: {type(exc).__name__}: {exc}"
                runtime.printer.agent_finished(child_depth, child_id, message)
                return SubagentResult(
                    child_agent_id=child_id, answer=message, turns_used=0,
                    tool_calls_made=own_calls[0], ok=False,
                ).model_dump()
            finally:
                agent_tool_calls.reset(token)
                agent_label.reset(label_token)
            runtime.printer.agent_finished(child_depth, child_id, outcome.answer)
            return SubagentResult(
                child_agent_id=child_id, answer=outcome.answer or "(no answer)",
                turns_used=outcome.turns,
                tool_calls_made=own_calls[0],
            ).model_dump()

    return timed_tool(
        runtime, child_depth - 1, CALL_SUBAGENT,
        "Delegate a focused, self-contained question to a subagent that has the same "
        "tools. Returns its answer. Several calls in one turn run in parallel.",
        CallSubagentArguments.model_json_schema(), body, timeout=None,
    )


__all__ = ["CALL_SUBAGENT", "SubagentResult", "subagent_tool"]
