"""What each instrumentor's convention says a span is: the rules behind `canonical.project`.

OTel producers (`HaloSpanExporter`, `halo serve`) call `project_span`. Before the
generic projection in `canonical.project` it reads the conventions the
instrumentors people use actually emit, and fills in the upstream facts the
reference and our tools read (`tool.name`, `input.value`, `output.value`) where
the sender left them absent:

- GenAI semconv: `gen_ai.tool.name`, tool call arguments / result, input /
  output messages; a span with a request model and token usage but no
  operation is an LLM call (Logfire's chat completions).
- OpenLLMetry: `traceloop.span.kind` and `traceloop.entity.*`.
- Logfire's Agents SDK spans, from their attributes (the SDK's span data), never
  from their message templates.
- OpenInference handoffs (a TOOL span named "handoff to X" with no tool): CHAIN,
  as the Agents SDK processor maps a handoff.

`error_text` makes a status message read like a sentence when the sender left
it empty or put a structure there.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import orjson

from halo_live.exporter import canonical as C

# GenAI content (opt-in attributes of the semantic conventions)
GENAI_INPUT_MESSAGES = "gen_ai.input.messages"
GENAI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GENAI_TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
GENAI_TOOL_RESULT = "gen_ai.tool.call.result"
# OpenLLMetry (Traceloop)
TRACELOOP_KIND = "traceloop.span.kind"
TRACELOOP_NAME = "traceloop.entity.name"
TRACELOOP_INPUT = "traceloop.entity.input"
TRACELOOP_OUTPUT = "traceloop.entity.output"
# Logfire: its spans carry the Agents SDK's span data as plain attributes
LOGFIRE_SPAN_TYPE = "logfire.span_type"
LOGFIRE_TAGS = "logfire.tags"
LOGFIRE_ERROR = "error"

_TRACELOOP_TO_OBS = {
    "workflow": C.OBS_CHAIN, "task": C.OBS_CHAIN, "agent": C.OBS_AGENT, "tool": C.OBS_TOOL,
    "handoff": C.OBS_CHAIN,
}
# (upstream key to fill, the conventions' keys that hold its value, first found wins)
_FILLS = (
    (C.OI_TOOL_NAME, (C.GENAI_TOOL_NAME,)),
    (C.OI_INPUT_VALUE, (GENAI_TOOL_ARGUMENTS, GENAI_INPUT_MESSAGES, TRACELOOP_INPUT)),
    (C.OI_OUTPUT_VALUE, (GENAI_TOOL_RESULT, GENAI_OUTPUT_MESSAGES, TRACELOOP_OUTPUT)),
)
_FILL_SOURCES = frozenset(key for _, sources in _FILLS for key in sources)
_USAGE_KEYS = (C.GENAI_INPUT_TOKENS, C.GENAI_OUTPUT_TOKENS, C.GENAI_PROMPT_TOKENS, C.GENAI_COMPLETION_TOKENS)
_OI_HANDOFF_PREFIX = "handoff to "  # OpenInference names its handoff spans so, and nothing else
_MAX_STRUCTURE_CHARS = 65_536  # a longer status message is kept as sent rather than parsed


def _text(value: Any) -> str | None:
    """A value as text for `input.value` / `output.value` (structures as JSON)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _response_output(response: Any) -> str | None:
    """The `output` items of a Responses API response (Logfire keeps the whole response as JSON)."""
    if isinstance(response, str) and len(response) <= _MAX_STRUCTURE_CHARS * 16:
        try:
            response = orjson.loads(response)
        except orjson.JSONDecodeError:
            return None
    return _text(response.get("output")) if isinstance(response, dict) else None


def _logfire_facts(attrs: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(kind, facts) of a Logfire Agents SDK span, read from its span-data attributes."""
    name = attrs.get("name") if isinstance(attrs.get("name"), str) else None
    if {"handoffs", "tools", "output_type"} <= attrs.keys():
        return C.OBS_AGENT, {C.INF_AGENT_NAME: name}
    if {"input", "mcp_data"} <= attrs.keys():  # the SDK's function span data
        return C.OBS_TOOL, {C.OI_TOOL_NAME: name, C.OI_INPUT_VALUE: _text(attrs.get("input")),
                            C.OI_OUTPUT_VALUE: _text(attrs.get("output"))}
    if "triggered" in attrs and name:
        return C.OBS_GUARDRAIL, {}
    if {"from_agent", "to_agent"} <= attrs.keys():
        return C.OBS_CHAIN, {}
    # generation spans hold `input` / `output`; Responses API spans `raw_input` and the `response`
    facts = {C.OI_INPUT_VALUE: _text(attrs.get("input") or attrs.get("raw_input")),
             C.OI_OUTPUT_VALUE: _text(attrs.get("output")) or _response_output(attrs.get("response"))}
    tags = attrs.get(LOGFIRE_TAGS)
    if isinstance(tags, list) and "LLM" in tags:
        return C.OBS_LLM, facts
    turn_agent = attrs.get("agent_name")  # a turn span names its agent
    if isinstance(turn_agent, str) and turn_agent:
        return None, {C.INF_AGENT_NAME: turn_agent}
    return None, facts if attrs.get(C.GENAI_REQUEST_MODEL) else {}


def _convention_kind(attrs: Mapping[str, Any], name: str) -> str | None:
    """The kind the generic rules miss (None: leave it to `canonical.observation_kind`)."""
    oi = attrs.get(C.OI_SPAN_KIND)
    if oi == "TOOL" and name.startswith(_OI_HANDOFF_PREFIX) and not C.tool_name(attrs):
        return C.OBS_CHAIN
    if oi or attrs.get(C.GENAI_OPERATION) or attrs.get(C.INF_OBSERVATION_KIND):
        return None
    traceloop = attrs.get(TRACELOOP_KIND)
    if isinstance(traceloop, str) and traceloop in _TRACELOOP_TO_OBS:
        return _TRACELOOP_TO_OBS[traceloop]
    if attrs.get(C.GENAI_REQUEST_MODEL) and any(attrs.get(k) is not None for k in _USAGE_KEYS):
        return C.OBS_LLM
    return None


def convention_facts(attrs: Mapping[str, Any], name: str = "") -> dict[str, Any]:
    """Facts the span's conventions imply, for keys the sender left absent.

    Upstream keys (`tool.name`, `input.value`, `output.value`) go on the line as
    is; `inference.observation_kind` / `inference.agent_name` are handed to
    `canonical.project`, which keeps a value already present.
    """
    facts: dict[str, Any] = {}
    kind = _convention_kind(attrs, name)
    if LOGFIRE_SPAN_TYPE in attrs:
        logfire_kind, logfire = _logfire_facts(attrs)
        kind = kind or logfire_kind
        facts.update(logfire)
    traceloop_name = attrs.get(TRACELOOP_NAME)
    if isinstance(traceloop_name, str) and traceloop_name:
        traceloop = attrs.get(TRACELOOP_KIND)
        if traceloop == "tool":
            facts.setdefault(C.OI_TOOL_NAME, traceloop_name)
        elif traceloop == "agent":
            facts.setdefault(C.INF_AGENT_NAME, traceloop_name)
    if not _FILL_SOURCES.isdisjoint(attrs):  # most spans hold none of them: skip the loop
        for key, sources in _FILLS:
            if facts.get(key) is not None or attrs.get(key) not in (None, ""):
                continue
            for source in sources:
                value = attrs.get(source)
                if value is not None and value != "":
                    facts[key] = _text(value)
                    break
    if kind is not None:
        facts[C.INF_OBSERVATION_KIND] = kind
    if not facts:
        return facts
    return {k: v for k, v in facts.items()
            if v is not None and v != "" and attrs.get(k) in (None, "")}


def project_span(
    attrs: Mapping[str, Any],
    *,
    name: str = "",
    project_id: str | None = None,
    resource_attrs: Mapping[str, Any] | None = None,
    agent_name_hint: str | None = None,
    events: Any = None,
) -> dict[str, Any]:
    """The attributes to add to an OTel span's own: convention facts plus `canonical.project`
    (`events`, the line's events, may carry an evaluation result)."""
    facts = convention_facts(attrs, name)
    if not facts:  # the common case: nothing beyond the generic rules
        return C.project(attrs, project_id=project_id, resource_attrs=resource_attrs,
                         agent_name_hint=agent_name_hint, events=events)
    projected = C.project({**attrs, **facts}, project_id=project_id, resource_attrs=resource_attrs,
                          agent_name_hint=agent_name_hint, events=events)
    for key, value in facts.items():
        if not key.startswith("inference."):
            projected.setdefault(key, value)
    return projected


# --- status messages ------------------------------------------------------------------------


def _structure(text: str) -> Any:
    """A dict/list parsed from JSON or a Python literal (an instrumentor's repr); else None."""
    if len(text) > _MAX_STRUCTURE_CHARS:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _from_error_object(value: Any) -> tuple[str, Any] | None:
    """(message, data) of the Agents SDK's error shape {"message", "data"}."""
    if isinstance(value, dict) and isinstance(value.get("message"), str) and value["message"]:
        return value["message"], value.get("data")
    return None


def error_text(message: str, events: Any, attrs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """An ERROR span's status message as a sentence, and attributes to add (`sdk.error.data`).

    Taken, in order, from: the message itself when it is plain text; the structure
    inside it (OpenLLMetry's dict repr, OpenInference's "text: {dict}"); the
    exception event; the instrumentor's error attribute (Logfire's `error`).
    The structure's data goes to `sdk.error.data`, where the report finds a
    tool error's cause, as for the Agents SDK processor's own spans.
    """
    message = message or ""
    found: tuple[str, Any] | None = None
    stripped = message.strip()
    if stripped.startswith(("{", "[")):
        parsed = _structure(stripped)
        found = _from_error_object(parsed)
        if found is None and parsed is not None:
            found = (_text(parsed) or "", None)
    elif stripped.endswith("}") and ": {" in stripped:
        head, _, tail = stripped.partition(": {")
        parsed = _structure("{" + tail)
        if isinstance(parsed, dict) and "error" in parsed:  # the Agents SDK's tool error data
            found = (head, parsed)
    if found is None and not stripped:
        text = C.exception_message(events)
        if text:
            return text, {}
        raw = attrs.get(LOGFIRE_ERROR)
        found = _from_error_object(_structure(raw) if isinstance(raw, str) else raw)
    if found is None:
        return message, {}
    text, data = found
    extra: dict[str, Any] = {}
    if data is not None and attrs.get(C.SDK_ERROR_DATA) in (None, ""):
        extra[C.SDK_ERROR_DATA] = _text(data)
    return text or message, extra
