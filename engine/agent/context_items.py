"""`get_context_item`: read back a tool result that compaction replaced with a summary.

Compaction (`halo_live.engine.agent.compaction`) keeps every result it cuts
in the run's `context_items`, keyed by the tool call's id, and its stub names
that id and this tool. The tool returns the original in pages that fit the
per-call budget of the trace tools (~150 KB), so reading an item back never
blows the context the compaction was protecting.
"""

from __future__ import annotations

from agents import FunctionTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from halo_live.engine.agent.function_tool import error_text, timed_tool
from halo_live.engine.agent.runtime import AgentRuntime
from halo_live.engine.budget import VIEW_TRACE_BUDGET_BYTES

GET_CONTEXT_ITEM = "get_context_item"
PAGE_CHARS = VIEW_TRACE_BUDGET_BYTES  # one page of an item: the trace tools' per-call budget


class GetContextItemArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: str = Field(min_length=1, description="The item_id named in a `[halo compacted: ...]` stub.")
    offset: int = Field(default=0, ge=0, description="Character offset to read from (next_offset of a page).")


def remember(runtime: AgentRuntime, item_id: str, *, tool: str | None, arguments: str | None,
             content: str) -> None:
    """Keep a cut item addressable for the rest of the run."""
    runtime.context_items.setdefault(item_id, {"tool": tool, "arguments": arguments, "content": content})


def get_item(runtime: AgentRuntime, item_id: str, offset: int = 0) -> dict:
    """One page of a stored item, or `{"error": ...}` naming the ids there are."""
    item = runtime.context_items.get(item_id)
    if item is None:
        known = ", ".join(list(runtime.context_items)[-10:]) or "none yet"
        return {"error": f"no context item {item_id!r}; compacted items: {known}"}
    content = item["content"]
    if offset > len(content):
        return {"error": f"offset {offset} is past the end of item {item_id!r} ({len(content)} chars)"}
    page = content[offset:offset + PAGE_CHARS]
    end = offset + len(page)
    return {"item_id": item_id, "tool": item["tool"], "arguments": item["arguments"],
            "content": page, "total_chars": len(content), "offset": offset,
            "next_offset": end if end < len(content) else None}


def context_item_tool(runtime: AgentRuntime, depth: int) -> FunctionTool:
    """The `get_context_item` function tool of an agent at `depth`."""

    async def body(arguments: str) -> dict:
        try:
            args = GetContextItemArguments.model_validate_json(arguments)
        except ValidationError as exc:
            return {"error": error_text(exc)}
        return get_item(runtime, args.item_id, args.offset)

    return timed_tool(
        runtime, depth, GET_CONTEXT_ITEM,
        "Return in full a tool result that was compacted to a summary (the `item_id` is in its "
        "`[halo compacted: ...]` stub), in pages of ~150 KB (`next_offset`).",
        GetContextItemArguments.model_json_schema(), body,
    )
