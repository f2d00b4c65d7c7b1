"""Drive one agent (root or subagent) to an answer, surviving what can be survived.

Three layers of retry, innermost first: the `openai` client retries a failed
HTTP request (honouring `Retry-After`); the SDK's runner retries a model call
on 429/5xx/network errors with backoff (`ModelSettings.retry`); and this loop
re-runs the agent from its own history after a failure that escaped both (a
stream cut after output began, a malformed model turn, a context overflow —
then with a tighter compaction threshold). A run that hits `--max-turns` is
not thrown away: one last tool-less call turns what was found into an answer.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from agents import Agent, ItemHelpers, ModelSettings, Runner
from agents.exceptions import (
    AgentsException,
    MaxTurnsExceeded,
    ModelBehaviorError,
    ModelRefusalError,
)
from openai import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    RateLimitError,
)

from halo_live.engine.agent.compaction import InputFilter
from halo_live.engine.agent.prompts import EMPTY_ANSWER_MESSAGE, NUDGE_PREFIX, WRAP_UP_MESSAGE
from halo_live.engine.agent.runtime import AgentRuntime

MAX_RUN_RETRIES = 2  # re-runs from history after the SDK's own per-call retries gave up
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 20.0


@dataclass
class AgentOutcome:
    """What one agent produced: its answer and what it cost."""

    answer: str
    turns: int
    salvaged: bool = False  # the turn budget ran out; the answer was written from what was found


def is_context_overflow(exc: BaseException) -> bool:
    return isinstance(exc, BadRequestError) and (
        getattr(exc, "code", None) == "context_length_exceeded"
        or "context length" in str(exc).lower() or "context_length" in str(exc).lower()
    )


def is_retriable(exc: BaseException, *, progressed: bool) -> bool:
    """Failures a fresh attempt from local history can fix.

    A transport or provider failure before any output was already retried by
    the client and the SDK; re-running only helps when it cut a stream that
    had made progress (the SDK never replays a stream that emitted output).
    """
    if isinstance(exc, ModelBehaviorError) or is_context_overflow(exc):
        return True
    if not progressed:
        return False
    if isinstance(exc, (APIConnectionError, APITimeoutError, RateLimitError)):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409)
    if isinstance(exc, APIError):  # a provider error event inside a stream
        return True
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    # Transport errors of the HTTP stack that escape the client mid-stream (httpx or httpx2).
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore") and (
        "Error" in type(exc).__name__
    )


def backoff_delay(attempt: int) -> float:
    """Full-jitter exponential backoff, `attempt` counted from 1."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))


def consistent_history(items: list[Any]) -> list[Any]:
    """`items` without tool calls that never got a result and results without a call,
    so the history can be sent again after a run died mid-turn."""
    calls = {i.get("call_id") for i in items if isinstance(i, dict) and i.get("type") == "function_call"}
    outputs = {
        i.get("call_id") for i in items
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    }
    kept = []
    for item in items:
        if isinstance(item, dict):
            kind = item.get("type")
            if kind == "function_call" and item.get("call_id") not in outputs:
                continue
            if kind == "function_call_output" and item.get("call_id") not in calls:
                continue
        kept.append(item)
    return kept


def _without_nudges(items: list[Any]) -> list[Any]:
    return [
        item for item in items
        if not (isinstance(item, dict) and item.get("role") == "user"
                and str(item.get("content", "")).startswith(NUDGE_PREFIX))
    ]


def _history_of(exc: BaseException, streamed: Any, hooks: Any, fallback: Any) -> tuple[Any, int]:
    """(history to resume from, model calls already made) after a failed attempt.

    Best source first: the streamed result's items, the SDK's error snapshot,
    then the last input the model was sent (what a plain run leaves behind).
    """
    if streamed is not None:
        try:
            return consistent_history(streamed.to_input_list()), len(streamed.raw_responses)
        except Exception:
            pass
    run_data = getattr(exc, "run_data", None) if isinstance(exc, AgentsException) else None
    if run_data is not None:
        items = ItemHelpers.input_to_new_input_list(run_data.input)
        items += [item.to_input_item() for item in run_data.new_items]
        return consistent_history(items), len(run_data.raw_responses)
    if hooks is not None and hooks.last_input:
        # the call that failed was started but never completed
        return consistent_history(_without_nudges(hooks.last_input)), max(0, hooks.calls_started - 1)
    return fallback, 0


async def _attempt(runtime: AgentRuntime, agent: Agent[Any], history: Any, *,
                   max_turns: int, is_root: bool, holder: list, hooks: Any,
                   turn_offset: int = 0) -> Any:
    """One SDK run; `holder` gets the streamed result (for its partial history) and
    `holder[1:]` counts stream events, i.e. whether the attempt made progress."""
    run_config = runtime.run_config(
        input_filter=InputFilter(runtime, max_turns=max_turns, is_root=is_root,
                                 turn_offset=turn_offset)
    )
    if runtime.settings.stream:
        result = Runner.run_streamed(
            agent, history, max_turns=max_turns, hooks=hooks, run_config=run_config
        )
        holder[:] = [result, 0]
        async for event in result.stream_events():
            # Steps are shown by the tools and hooks, identically in both modes; here only
            # model output and run items count as progress (not the agent-updated event).
            if event.type in ("raw_response_event", "run_item_stream_event"):
                holder[1] += 1
        return result
    return await Runner.run(
        agent, history, max_turns=max_turns, hooks=hooks, run_config=run_config
    )


async def _wrap_up(runtime: AgentRuntime, agent: Agent[Any], history: list[Any],
                   message: str = WRAP_UP_MESSAGE) -> str:
    """One call with tools off: the answer from what the agent has found so far."""
    closing = agent.clone(
        model_settings=agent.model_settings.resolve(ModelSettings(tool_choice="none")),
        tool_use_behavior="run_llm_again",
    )
    result = await Runner.run(
        closing, [*history, {"role": "user", "content": message}],
        max_turns=1, hooks=runtime.hooks, run_config=runtime.run_config(),
    )
    return str(result.final_output or "")


async def run_agent(runtime: AgentRuntime, agent: Agent[Any], task: Any, *,
                    depth: int, max_turns: int, is_root: bool, turns_done: int = 0) -> AgentOutcome:
    """Run `agent` on `task` until it answers; raises only what no retry can fix.

    `task` is a question or a conversation to go on from; `turns_done` counts the turns
    that conversation already used (a resumed run), against `max_turns`.
    """
    history: Any = task
    failures = refusals = 0
    max_run_retries = MAX_RUN_RETRIES if runtime.settings.max_retries > 0 else 0
    while True:
        holder: list = []
        hooks = runtime.hooks.for_attempt()
        try:
            result = await _attempt(
                runtime, agent, history, max_turns=max(1, max_turns - turns_done),
                is_root=is_root, holder=holder, hooks=hooks, turn_offset=turns_done,
            )
            turns = turns_done + len(result.raw_responses)
            answer = str(result.final_output or "").strip()
            if not answer:  # a model that ends with an empty turn is asked once to write it out
                runtime.printer.notice(depth, "the model ended without an answer; asking for it")
                history = consistent_history(result.to_input_list())
                answer = (await _wrap_up(runtime, agent, history, EMPTY_ANSWER_MESSAGE)).strip()
                turns += 1
            return AgentOutcome(answer=answer, turns=turns)
        except MaxTurnsExceeded as exc:
            streamed = holder[0] if holder else None
            items, used = _history_of(exc, streamed, hooks, None)
            if items is None:
                raise
            runtime.printer.notice(depth, f"turn budget of {max_turns} used up; writing the answer")
            answer = await _wrap_up(runtime, agent, items)
            return AgentOutcome(answer=answer.strip(), turns=turns_done + used + 1, salvaged=True)
        except ModelRefusalError as exc:
            if refusals >= runtime.settings.refusal_retries:
                raise
            refusals += 1
            streamed = holder[0] if holder else None
            items, used = _history_of(exc, streamed, hooks, history)
            history = [*ItemHelpers.input_to_new_input_list(items), {"role": "user", "content": "Continue."}]
            turns_done += used
            runtime.printer.notice(depth, f"model refused; asking again ({refusals}/{runtime.settings.refusal_retries})")
        except Exception as exc:
            progressed = (len(holder) > 1 and holder[1] > 0) or hooks.calls_started > 1
            if not is_retriable(exc, progressed=progressed) or failures >= max_run_retries:
                raise
            failures += 1
            runtime.stats.retries += 1
            if is_context_overflow(exc):
                settings = runtime.settings
                settings.compaction_threshold_chars = max(1_000, settings.compaction_threshold_chars // 2)
            streamed = holder[0] if holder else None
            history, used = _history_of(exc, streamed, hooks, history)
            turns_done += used
            delay = backoff_delay(failures)
            runtime.printer.notice(
                depth, f"{type(exc).__name__}: {exc}; re-running from history in {delay:.1f}s "
                f"({failures}/{max_run_retries})",
            )
            await asyncio.sleep(delay)
