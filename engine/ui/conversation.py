"""An LLM span's conversation as plain messages: role, text, tool calls, tool results.

Spans spell a conversation several ways: the `llm.input_messages` /
`llm.output_messages` JSON our exporter writes (Chat Completions messages or
Responses items), OpenInference's flat `llm.input_messages.N.message.*` keys,
or the GenAI semconv `gen_ai.input.messages` parts. All become one shape the
page shows as text; nothing here is ever interpreted as markup.
"""

from __future__ import annotations

import json
import re
from typing import Any

from halo_live.exporter import canonical as c

TEXT_CHARS = 20_000  # one message's text in the view; the raw JSON panel has the rest
_FLAT = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_SIDES = (("input", c.OI_INPUT_MESSAGES, "gen_ai.input.messages"),
          ("output", c.OI_OUTPUT_MESSAGES, "gen_ai.output.messages"))


def conversation(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of one span, inputs then outputs; empty for a span without any."""
    try:
        return _conversation(attrs)
    except RecursionError:  # absurdly nested content: the raw JSON panel still shows it
        return [_message("input", "unknown", "(messages nested too deeply to show; see Raw JSON)")]


def _conversation(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for side, oi_key, genai_key in _SIDES:
        messages = _messages(_loads(attrs.get(oi_key)), side) or _messages(_loads(attrs.get(genai_key)), side)
        if not messages:
            messages = _flat(attrs, side)
        out.extend(messages)
    if not out:
        for side, key in (("input", c.OI_INPUT_VALUE), ("output", c.OI_OUTPUT_VALUE)):
            if attrs.get(c.INF_OBSERVATION_KIND) == "LLM" and attrs.get(key) not in (None, ""):
                out.append(_message(side, "user" if side == "input" else "assistant", _text(attrs[key])))
    return out


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def _message(side: str, role: Any, text: str = "", tool_calls: list | None = None,
             tool_call_id: Any = None, name: Any = None) -> dict[str, Any]:
    return {"side": side, "role": str(role or "unknown"), "text": text[:TEXT_CHARS],
            "tool_calls": tool_calls or [], "tool_call_id": str(tool_call_id) if tool_call_id else "",
            "name": str(name) if name else ""}


def _text(content: Any) -> str:
    """Text of a message content: a string, a list of parts, or anything else as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                value = part.get("text", part.get("content", part.get("refusal")))
                parts.append(value if isinstance(value, str) else json.dumps(part, ensure_ascii=False))
            else:
                parts.append(_text(part))
        return "\n".join(p for p in parts if p)
    return json.dumps(content, ensure_ascii=False, default=str)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _field(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _call(id_: Any, name: Any, arguments: Any) -> dict[str, str]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False, default=str)
    return {"id": str(id_ or ""), "name": str(name or ""), "arguments": (args or "")[:TEXT_CHARS]}


def _messages(items: Any, side: str) -> list[dict[str, Any]]:
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("output"), list) and "role" not in item:  # a whole Responses object
            out.extend(_messages(item["output"], side))
            continue
        kind = item.get("type")
        if kind == "function_call":
            out.append(_message(side, "assistant", tool_calls=[
                _call(item.get("call_id") or item.get("id"), item.get("name"), item.get("arguments"))]))
        elif kind == "function_call_output":
            out.append(_message(side, "tool", _text(item.get("output")), tool_call_id=item.get("call_id")))
        elif "parts" in item:  # GenAI semconv
            texts, calls, result_of = [], [], None
            for part in _list(item.get("parts")):
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "tool_call":
                    calls.append(_call(part.get("id"), part.get("name"), part.get("arguments")))
                elif part.get("type") == "tool_call_response":
                    result_of = part.get("id")
                    texts.append(_text(part.get("response")))
                else:
                    texts.append(_text(part.get("content", part.get("text"))))
            out.append(_message(side, item.get("role"), "\n".join(t for t in texts if t), calls, result_of))
        elif "role" in item or "content" in item:
            calls = [_call(tc.get("id"), _field(tc.get("function"), "name"), _field(tc.get("function"), "arguments"))
                     for tc in _list(item.get("tool_calls")) if isinstance(tc, dict)]
            out.append(_message(side, item.get("role") or ("assistant" if side == "output" else "user"),
                                _text(item.get("content")), calls, item.get("tool_call_id"), item.get("name")))
        elif kind in ("reasoning",):
            continue
        else:
            out.append(_message(side, kind or "item", _text(item)))
    return out


def _flat(attrs: dict[str, Any], side: str) -> list[dict[str, Any]]:
    """OpenInference's flattened keys: `llm.input_messages.0.message.role` and friends."""
    by_index: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _FLAT.match(key)
        if m and m.group(1) == side:
            by_index.setdefault(int(m.group(2)), {})[m.group(3)] = value
    out = []
    for _, fields in sorted(by_index.items()):
        calls: dict[str, dict[str, Any]] = {}
        contents = []
        for key, value in sorted(fields.items()):
            tc = re.match(r"^tool_calls\.(\d+)\.tool_call\.(.+)$", key)
            if tc:
                calls.setdefault(tc.group(1), {})[tc.group(2)] = value
            elif key.startswith("contents.") and key.endswith(".text"):
                contents.append(_text(value))
        text = _text(fields.get("content")) or "\n".join(contents)
        tool_calls = [_call(v.get("id"), v.get("function.name"), v.get("function.arguments"))
                      for _, v in sorted(calls.items(), key=lambda kv: int(kv[0]))]
        out.append(_message(side, fields.get("role"), text, tool_calls, fields.get("tool_call_id"),
                            fields.get("name")))
    return out
