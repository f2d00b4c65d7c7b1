"""The diagnostic agent: a root agent on the OpenAI Agents SDK over the trace tools.

Python API (the CLI `halo TRACE_PATH -p` is a thin layer over it):

    from halo_live.engine.agent.ask import AgentSettings, ask
    result = asyncio.run(ask("traces/", "Which tool fails most often?", AgentSettings()))
    print(result.answer)

The root agent has the registry's trace tools, `synthesize_traces`, `call_subagent`
(below `--max-depth`) and `final_answer`; subagents have the same minus
`final_answer`. With `AgentSettings(repo_path=...)` every agent also gets the
read-only code tools, and the git tools when the folder is a git work tree.
Works against any OpenAI-compatible endpoint.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import Agent
from agents.agent import StopAtTools
from openai import AsyncOpenAI

from halo_live.engine.agent.code_tools import Repos
from halo_live.engine.agent.checkpoint import RunFolder
from halo_live.engine.agent.config import AgentSettings, model_settings
from halo_live.engine.agent.context_items import context_item_tool
from halo_live.engine.agent.display import RetryNotices, StepPrinter
from halo_live.engine.agent.errors import EmptyDatasetError
from halo_live.engine.agent.prompts import root_instructions, subagent_instructions
from halo_live.engine.agent.runner import consistent_history, run_agent
from halo_live.engine.agent.runtime import AgentRuntime, RunStats
from halo_live.engine.agent.subagents import subagent_tool
from halo_live.engine.agent.telemetry import start_telemetry
from halo_live.engine.agent.tools import (
    FINAL_ANSWER,
    final_answer_tool,
    repo_tools,
    synthesize_tool,
    trace_tools,
)
from halo_live.engine.tools import open_store, run_tool

# The openai client's own per-request retries (it honours Retry-After); the SDK
# runner adds `--max-retries` more with backoff on top.
CLIENT_MAX_RETRIES = 2
CLIENT_TIMEOUT_SECONDS = 600.0

__all__ = ["AgentSettings", "AskResult", "ask", "build_agent", "build_client"]


@dataclass
class AskResult:
    """The answer and what it took."""

    answer: str
    stats: RunStats
    salvaged: bool
    telemetry_path: Path | str | None = None  # the file, or the OTLP endpoint it was sent to


def build_client(settings: AgentSettings) -> AsyncOpenAI:
    """An AsyncOpenAI client for the configured endpoint (arguments, then env vars)."""
    return AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        default_headers=settings.headers or None,
        max_retries=CLIENT_MAX_RETRIES if settings.max_retries > 0 else 0,
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def build_agent(runtime: AgentRuntime, *, depth: int, repos: Repos | None = None) -> Agent[Any]:
    """The root agent (depth 0) or a subagent at `depth`, with the tools of that depth.

    `repos` (the opened `--repo-path`) adds the code and git tools at every depth.
    """
    settings = runtime.settings
    tools = [*trace_tools(runtime, depth), *repo_tools(runtime, depth, repos),
             synthesize_tool(runtime, depth), context_item_tool(runtime, depth)]
    if depth < settings.max_depth:
        tools.append(subagent_tool(runtime, depth + 1, build_agent=build_agent, repos=repos))
    code = {"repo_root": str(repos.code.root) if repos else None,
            "git": bool(repos and repos.git), "run_code": settings.run_code,
            "dataset_context": settings.dataset_context}
    common = {
        "model": settings.model,
        "model_settings": model_settings(settings, role="agent"),
    }
    if depth == 0:
        return Agent(
            name="halo-root",
            instructions=root_instructions(
                max_turns=settings.max_turns, max_depth=settings.max_depth,
                max_parallel=settings.max_parallel, **code,
            ),
            tools=[*tools, final_answer_tool(runtime)],
            tool_use_behavior=StopAtTools(stop_at_tool_names=[FINAL_ANSWER]),
            **common,
        )
    return Agent(
        name=f"halo-sub-{depth}",
        instructions=subagent_instructions(
            depth=depth, max_turns=settings.max_turns, max_depth=settings.max_depth,
            max_parallel=settings.max_parallel, **code,
        ),
        tools=tools,
        **common,
    )


async def ask(trace_path: str | Path, prompt: str, settings: AgentSettings, *,
              printer: StepPrinter | None = None, telemetry_path: str | Path | None = None,
              index_dir: str | Path | None = None, run: RunFolder | None = None) -> AskResult:
    """Answer `prompt` about the traces at `trace_path` (a file, a folder of shards, a glob).

    `telemetry_path` writes the engine's own run (model calls, tool calls,
    subagents) there as canonical JSONL, so halo can diagnose itself.
    `run` (a `RunFolder`) checkpoints the root conversation before each root
    model call; when it already holds a conversation (a resumed run, a
    follow-up), the agent goes on from it instead of starting from `prompt`.
    Raises the openai/SDK exception when the endpoint fails for good, and
    ValueError (before any model call) when `settings.repo_path` is not a folder.
    """
    printer = printer or StepPrinter()
    repos = Repos.open(settings.repo_path) if settings.repo_path else None
    telemetry = start_telemetry(telemetry_path) if telemetry_path is not None else None
    try:
        client = build_client(settings)
        runtime = AgentRuntime(
            settings=settings, store=None, client=client, printer=printer,
            tracing=telemetry is not None,
        )
        try:
            runtime.store = await runtime.call_in_worker(
                open_store, str(trace_path), str(index_dir) if index_dir else None
            )
            await _require_traces(runtime, trace_path)
            agent = build_agent(runtime, depth=0, repos=repos)
            printer.agent_started(0, "halo-root", prompt)
            task: Any = prompt
            turns_done = 0
            if run is not None:
                runtime.compacted.update(run.state.compacted)
                if run.state.history:
                    task, turns_done = consistent_history(list(run.state.history)), run.state.turns
                runtime.checkpoint = lambda history, turns: run.checkpoint(
                    history, turns, runtime.compacted)

            def count_retry() -> None:
                runtime.stats.retries += 1

            with RetryNotices(printer, count_retry), (
                telemetry.trace("halo ask") if telemetry else nullcontext()
            ):
                outcome = await run_agent(
                    runtime, agent, task, depth=0, max_turns=settings.max_turns, is_root=True,
                    turns_done=turns_done,
                )
            if run is not None:
                run.finish(outcome.answer, runtime.compacted, turns=outcome.turns)
            stats = runtime.stats
            printer.agent_finished(
                0, "halo-root",
                f"{stats.llm_calls} model calls, {stats.tool_calls} tool calls, "
                f"{stats.subagents} subagents, {stats.input_tokens}+{stats.output_tokens} tokens",
            )
            result = AskResult(answer=outcome.answer, stats=stats, salvaged=outcome.salvaged)
        finally:
            await runtime.close()
    finally:
        if telemetry is not None:
            telemetry.shutdown()  # flushes, and sends to an OTLP endpoint
    result.telemetry_path = telemetry.target if telemetry else None
    return result


async def _require_traces(runtime: AgentRuntime, trace_path: str | Path) -> None:
    """Refuse an empty dataset before the first model call is paid for."""
    counted = await runtime.call_in_worker(run_tool, runtime.store, "count_traces", {})
    if counted.get("result", {}).get("total", 1) == 0:
        raise EmptyDatasetError(f"no traces in {trace_path} yet; nothing to ask about")
