"""Keep a long investigation inside the model's context, and remind it of its budget.

`InputFilter` is the SDK's `call_model_input_filter`: before every model call
it (1) compacts old tool results once the input passes the threshold and
(2) appends a turn reminder. Only what is *sent* changes; the run's history
keeps every result, so a later call can still compact differently.

Compaction beats the reference's: it happens during the run, when the input
is actually large (the reference compacts only when a run ends), each result
is summarized once and cached by call id, the newest results stay verbatim,
and a failed summary falls back to a head cut instead of failing the run.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents.run_config import CallModelData, ModelInputData

from halo_live.engine.agent.context_items import remember
from halo_live.engine.agent.prompts import COMPACTION_INSTRUCTIONS, NUDGE_PREFIX, turn_nudge
from halo_live.engine.agent.runtime import AgentRuntime, agent_depth, one_shot

KEEP_LAST_OUTPUTS = 3  # the newest tool results are what the model is working on
MIN_COMPACT_CHARS = 2_000  # smaller results are not worth a summary call
FALLBACK_HEAD_CHARS = 1_500
TARGET_FRACTION = 0.6  # compact down to this share of the threshold, so it does not re-trigger at once
SUMMARY_CONCURRENCY = 4
SUMMARY_MAX_CHARS = 4_000
MARKER = ("[halo compacted: tool result of {chars} chars summarized; item_id={item_id}: "
          "get_context_item(item_id) returns it in full]\n")


def _size(item: Any) -> int:
    if isinstance(item, dict):
        output = item.get("output")
        if isinstance(output, str):
            return len(output) + 64
        content = item.get("content")
        if isinstance(content, str):
            return len(content) + 32
    try:
        return len(json.dumps(item, default=str))
    except (TypeError, ValueError):
        return len(str(item))


def input_chars(items: list[Any]) -> int:
    return sum(_size(item) for item in items)


def _head(text: str) -> str:
    return text[:FALLBACK_HEAD_CHARS] + " …"


async def _summary(runtime: AgentRuntime, call_id: str, text: str,
                   semaphore: asyncio.Semaphore) -> str:
    cached = runtime.compacted.get(call_id)
    if cached is not None:
        return cached
    async with semaphore:
        try:
            summary = await one_shot(
                runtime, role="compaction", instructions=COMPACTION_INSTRUCTIONS, text=text
            )
        except Exception as exc:  # compaction is an optimization: never fail the run for it
            runtime.printer.notice(0, f"compaction summary failed ({type(exc).__name__}); cut instead")
            summary = ""
    summary = summary[:SUMMARY_MAX_CHARS] if summary and len(summary) < len(text) else _head(text)
    runtime.compacted[call_id] = summary
    return summary


async def compact_items(runtime: AgentRuntime, items: list[Any], threshold: int, *,
                        depth: int = 0) -> list[Any]:
    """`items` with old large tool results replaced by summaries, if over `threshold` chars."""
    total = input_chars(items)
    if total <= threshold:
        return items
    outputs = [
        i for i, item in enumerate(items)
        if isinstance(item, dict) and item.get("type") == "function_call_output"
        and isinstance(item.get("output"), str)
    ]
    # Oldest first; the newest few only if the older ones are not enough, the very
    # last (what the model is reading right now) never.
    order = outputs[:-KEEP_LAST_OUTPUTS] + outputs[-KEEP_LAST_OUTPUTS:-1]
    target = int(threshold * TARGET_FRACTION)
    chosen, projected = [], total
    for i in order:
        if projected <= target:
            break
        if len(items[i]["output"]) > MIN_COMPACT_CHARS:
            chosen.append(i)
            projected -= len(items[i]["output"]) - FALLBACK_HEAD_CHARS
    if not chosen:
        return items
    semaphore = asyncio.Semaphore(SUMMARY_CONCURRENCY)
    summaries = await asyncio.gather(*(
        _summary(runtime, str(items[i].get("call_id") or i), items[i]["output"], semaphore)
        for i in chosen
    ))
    calls = {item.get("call_id"): item for item in items
             if isinstance(item, dict) and item.get("type") == "function_call"}
    new_items = list(items)
    for i, summary in zip(chosen, summaries):
        original = items[i]["output"]
        item_id = str(items[i].get("call_id") or i)
        call = calls.get(items[i].get("call_id")) or {}
        remember(runtime, item_id, tool=call.get("name"), arguments=call.get("arguments"),
                 content=original)
        new_items[i] = {**items[i], "output": MARKER.format(chars=len(original), item_id=item_id) + summary}
    after = input_chars(new_items)
    runtime.stats.compactions += 1
    runtime.printer.notice(depth, f"compacted {len(chosen)} old tool results: {total} → {after} chars")
    return new_items


def _is_nudge(item: Any) -> bool:
    return (isinstance(item, dict) and item.get("role") == "user"
            and str(item.get("content", "")).startswith(NUDGE_PREFIX))


class InputFilter:
    """Per-run `call_model_input_filter`: the root's checkpoint, compaction, the turn reminder.

    `turn_offset` counts the turns an earlier attempt (or a resumed run) already made,
    so the reminder and the checkpoint count turns of the whole run.
    """

    def __init__(self, runtime: AgentRuntime, *, max_turns: int, is_root: bool,
                 turn_offset: int = 0) -> None:
        self.runtime = runtime
        self.max_turns = max_turns
        self.is_root = is_root
        self.turn_offset = turn_offset
        self.turn = 0

    async def __call__(self, data: CallModelData[Any]) -> ModelInputData:
        self.turn += 1
        history = [item for item in data.model_data.input if not _is_nudge(item)]
        if self.is_root and self.runtime.checkpoint is not None:
            # Everything before this call is complete: the tool results of the last turn are in.
            self.runtime.checkpoint(history, self.turn_offset + self.turn - 1)
        items = await compact_items(
            self.runtime, history,
            self.runtime.settings.compaction_threshold_chars, depth=agent_depth(data.agent),
        )
        turn = self.turn_offset + self.turn
        nudge = {"role": "user", "content": turn_nudge(turn, self.turn_offset + self.max_turns,
                                                       is_root=self.is_root)}
        return ModelInputData(input=[*items, nudge], instructions=data.model_data.instructions)
