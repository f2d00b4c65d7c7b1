"""State shared by every agent of one run: store, client, caps, printer.

One `AgentRuntime` is built per `halo TRACE_PATH -p` run and passed to every
tool and subagent explicitly (no module globals). Trace-tool calls run on one
dedicated worker thread: the LMDB reads stay off the event loop. `run_code`
alone runs on a thread of its own (the store is thread-safe), so a computation
that takes its whole time limit does not hold up the other agents' lookups.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, ModelResponse, RunConfig, RunContextWrapper, RunHooks
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI

from halo_live.engine.agent.config import AgentSettings, model_settings
from halo_live.engine.agent.display import StepPrinter


@dataclass
class RunStats:
    """Counters of one run, for the closing line and the tests."""

    llm_calls: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    subagents: int = 0
    retries: int = 0
    compactions: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class AgentRuntime:
    """The run's shared objects; `close()` releases the worker thread and the client."""

    settings: AgentSettings
    store: Any
    client: AsyncOpenAI
    printer: StepPrinter
    tracing: bool = False
    stats: RunStats = field(default_factory=RunStats)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="halo-tools")
    )
    # Summaries of compacted tool outputs by call id, so each is summarized once per run.
    compacted: dict[str, str] = field(default_factory=dict)
    # The originals of compacted items by item id (`get_context_item` reads them back).
    context_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Called with (root history, root turns completed) before each root model call (run folders).
    checkpoint: Any = None
    semaphores: dict[int, asyncio.Semaphore] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One pool per depth: a parent holding a depth-N slot while it waits for its
        # children (depth N+1) can never starve them, which a single shared pool would.
        self.semaphores = {
            depth: asyncio.Semaphore(self.settings.max_parallel)
            for depth in range(1, self.settings.max_depth + 1)
        }
        self.provider = OpenAIProvider(
            openai_client=self.client, use_responses=self.settings.uses_responses_api()
        )
        self.hooks = _PrintingHooks(self)

    def run_config(self, *, input_filter=None, workflow: str = "halo ask") -> RunConfig:
        """A RunConfig bound to this run's client (never a client built from env vars)."""
        return RunConfig(
            model_provider=self.provider,
            call_model_input_filter=input_filter,
            tracing_disabled=not self.tracing,
            workflow_name=workflow,
            trace_include_sensitive_data=True,
            # A call to a tool that does not exist is a model slip it can correct, not a crash.
            tool_not_found_behavior="return_error_to_model",
        )

    async def call_in_worker(self, fn, *args):
        """Run a blocking store call on the store's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    async def close(self) -> None:
        try:
            await self.client.close()
        finally:
            close = getattr(self.store, "close", None)
            if callable(close):
                await self.call_in_worker(close)
            self.executor.shutdown(wait=True)


def agent_depth(agent: Agent[Any]) -> int:
    """Depth recorded on an agent we built (root 0), from its name `halo-sub-<depth>`."""
    name = agent.name
    if name.startswith("halo-sub-"):
        try:
            return int(name.rsplit("-", 1)[1])
        except ValueError:
            return 1
    return 0


class _PrintingHooks(RunHooks[Any]):
    """Counts model calls and shows text the model says alongside its tool calls."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self.runtime = runtime
        self.last_input: list[Any] | None = None
        self.calls_started = 0

    def for_attempt(self) -> "_PrintingHooks":
        """Hooks of one run attempt: they also remember the last model input, the
        consistent history a failed attempt resumes from."""
        return _PrintingHooks(self.runtime)

    async def on_llm_start(self, context: RunContextWrapper[Any], agent: Agent[Any],
                           system_prompt: str | None, input_items: list[Any]) -> None:
        self.last_input = list(input_items)
        self.calls_started += 1

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        stats = self.runtime.stats
        stats.llm_calls += 1
        usage = getattr(response, "usage", None)
        if usage is not None:
            stats.input_tokens += usage.input_tokens or 0
            stats.output_tokens += usage.output_tokens or 0
        texts, calls = [], 0
        for item in response.output:
            kind = getattr(item, "type", None)
            if kind == "function_call":
                calls += 1
            elif kind == "message":
                for part in getattr(item, "content", None) or []:
                    text = getattr(part, "text", None)
                    if text:
                        texts.append(text)
        # Text next to tool calls is the model thinking aloud; a text-only reply is the
        # answer, which is printed once, at the end.
        if calls and texts:
            self.runtime.printer.thought(agent_depth(agent), " ".join(texts))


def dumps(value: Any) -> str:
    """JSON text for the model: UTF-8 as is, anything odd as its string."""
    return json.dumps(value, ensure_ascii=False, default=str)


async def one_shot(runtime: AgentRuntime, *, role: str, instructions: str, text: str) -> str:
    """One tool-less model call (synthesis, compaction) with the run's retries and tracing."""
    from agents import Runner  # local: keeps this module light for the CLI's import


    settings = runtime.settings
    agent = Agent(
        name=f"halo-{role}",
        instructions=instructions,
        model=settings.model_for(role),
        model_settings=model_settings(settings, role=role),
    )
    result = await Runner.run(
        agent, text, max_turns=1, hooks=runtime.hooks,
        run_config=runtime.run_config(workflow=f"halo {role}"),
    )
    return str(result.final_output or "").strip()
