"""OpenAI wire shapes for the model server: requests in, bodies and SSE events out.

Requests of both APIs are normalized to one chat-shaped view (`normalize_*`),
so a policy sees the same `Turn` whatever API the harness uses. Replies are
rendered as the `openai` client and the Agents SDK parse them: Responses
objects and their stream events (`openai/types/responses/`), Chat Completions
objects and chunks (`chat_completion_chunk.py`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

# -- requests ------------------------------------------------------------------------


def _text_of(content: Any) -> str | None:
    """Plain text of a message content: a string, or a list of text parts joined."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def normalize_responses(body: dict) -> tuple[str | None, list[dict], list[dict]]:
    """(instructions, chat-shaped messages, tools) of a Responses request."""
    instructions = body.get("instructions")
    raw = body.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    messages: list[dict] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            call = {
                "id": item.get("call_id", ""),
                "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")},
            }
            last = messages[-1] if messages else None
            # Parallel calls arrive as consecutive items; chat shape holds them in one message.
            if last and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({
                "role": "tool",
                "tool_call_id": item.get("call_id", ""),
                "content": output if isinstance(output, str) else _text_of(output),
            })
        elif "role" in item and kind in (None, "message"):
            role = item["role"]
            if role in ("system", "developer"):
                instructions = "\n".join(x for x in (instructions, _text_of(item.get("content"))) if x)
                continue
            messages.append({"role": role, "content": _text_of(item.get("content"))})
    tools = [
        {"name": t.get("name", ""), "description": t.get("description") or "",
         "parameters": t.get("parameters") or {}}
        for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    return instructions, messages, tools


def normalize_chat(body: dict) -> tuple[str | None, list[dict], list[dict]]:
    """(instructions, messages without system ones, tools) of a Chat Completions request."""
    system: list[str] = []
    messages: list[dict] = []
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(msg.get("content")) or "")
            continue
        out = {"role": role, "content": _text_of(msg.get("content"))}
        if msg.get("tool_calls"):
            out["tool_calls"] = msg["tool_calls"]
        if msg.get("tool_call_id"):
            out["tool_call_id"] = msg["tool_call_id"]
        messages.append(out)
    tools = []
    for t in body.get("tools") or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict):
            tools.append({"name": fn.get("name", ""), "description": fn.get("description") or "",
                          "parameters": fn.get("parameters") or {}})
    return ("\n".join(system) if system else None), messages, tools


# -- helpers -----------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for replies that don't state usage."""
    return max(1, (len(text) + 3) // 4)


def pieces(text: str, max_pieces: int = 6) -> list[str]:
    """Split `text` into a few deltas on word boundaries, as a model streams."""
    if not text:
        return []
    words = text.split(" ")
    step = max(1, -(-len(words) // max_pieces))
    chunks = [" ".join(words[i:i + step]) for i in range(0, len(words), step)]
    return [c + (" " if i < len(chunks) - 1 else "") for i, c in enumerate(chunks)]


def error_body(message: str, status: int) -> dict:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}
    return {"error": {"message": message or f"HTTP {status}", "type": kinds.get(status, "api_error"),
                      "param": None, "code": None}}


def sse(event: str | None, data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


# -- Responses API ----------------------------------------------------------------------


def responses_items(text: str | None, calls: list[tuple[str, str, str]]) -> list[dict]:
    """Completed output items: one message (if any text), then one function_call per call."""
    items: list[dict] = []
    if text:
        items.append({
            "type": "message", "id": new_id("msg"), "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        })
    for call_id, name, arguments in calls:
        items.append({"type": "function_call", "id": new_id("fc"), "call_id": call_id,
                      "name": name, "arguments": arguments, "status": "completed"})
    return items


def response_object(model: str, body: dict, output: list[dict], usage: dict | None,
                    status: str = "completed", response_id: str | None = None) -> dict:
    return {
        "id": response_id or new_id("resp"), "object": "response", "created_at": time.time(),
        "status": status, "model": model, "output": output, "error": None,
        "incomplete_details": None, "instructions": body.get("instructions"), "metadata": {},
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "temperature": body.get("temperature"), "top_p": body.get("top_p"),
        "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "usage": usage,
    }


def responses_usage(input_tokens: int, output_tokens: int) -> dict:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens}


def responses_events(model: str, body: dict, items: list[dict], usage: dict) -> Iterator[bytes]:
    """The SSE stream of one response: created, per-item added/deltas/done, completed."""
    seq = iter(range(1_000_000))
    rid = new_id("resp")

    def ev(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

    yield ev("response.created", response=response_object(model, body, [], None, "in_progress", rid))
    yield ev("response.in_progress", response=response_object(model, body, [], None, "in_progress", rid))
    for idx, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield ev("response.output_item.added", output_index=idx,
                     item={**item, "status": "in_progress", "content": []})
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield ev("response.content_part.added", item_id=item["id"], output_index=idx,
                     content_index=0, part=empty)
            for delta in pieces(text):
                yield ev("response.output_text.delta", item_id=item["id"], output_index=idx,
                         content_index=0, delta=delta, logprobs=[])
            yield ev("response.output_text.done", item_id=item["id"], output_index=idx,
                     content_index=0, text=text, logprobs=[])
            yield ev("response.content_part.done", item_id=item["id"], output_index=idx,
                     content_index=0, part=item["content"][0])
        else:
            yield ev("response.output_item.added", output_index=idx,
                     item={**item, "arguments": "", "status": "in_progress"})
            for delta in pieces(item["arguments"], 3):
                yield ev("response.function_call_arguments.delta", item_id=item["id"],
                         output_index=idx, delta=delta)
            yield ev("response.function_call_arguments.done", item_id=item["id"], output_index=idx,
                     name=item["name"], arguments=item["arguments"])
        yield ev("response.output_item.done", output_index=idx, item=item)
    yield ev("response.completed", response=response_object(model, body, items, usage, "completed", rid))


# -- Chat Completions API -------------------------------------------------------------------


def chat_usage(input_tokens: int, output_tokens: int) -> dict:
    return {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}}


def chat_completion(model: str, text: str | None, calls: list[tuple[str, str, str]],
                    usage: dict) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in calls
        ]
    return {
        "id": new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                     "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": usage,
    }


def chat_chunks(model: str, text: str | None, calls: list[tuple[str, str, str]],
                usage: dict | None) -> Iterator[bytes]:
    """The SSE stream of one chat completion; a usage chunk last when `usage` is given."""
    cid, created = new_id("chatcmpl"), int(time.time())

    def chunk(delta: dict | None, finish: str | None = None, **extra: Any) -> bytes:
        choices = [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return sse(None, {"id": cid, "object": "chat.completion.chunk", "created": created,
                          "model": model, "choices": choices, **extra})

    yield chunk({"role": "assistant", "content": ""})
    for delta in pieces(text or ""):
        yield chunk({"content": delta})
    for index, (call_id, name, arguments) in enumerate(calls):
        yield chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                     "function": {"name": name, "arguments": ""}}]})
        for delta in pieces(arguments, 3):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": delta}}]})
    yield chunk({}, "tool_calls" if calls else "stop")
    if usage is not None:
        yield chunk(None, usage=usage)
    yield sse(None, "[DONE]")
