"""OpenAI Agents SDK span -> one canonical HALO line.

Works from `span.export()` (so future span types keep their data) plus the
Responses API object the SDK attaches when it records sensitive data. Line
shape and attribute names follow halo-engine 0.3.5's local processor, so our
files load there; we add the model name on Responses spans, the enclosing
agent's name on every span under an agent, and keep every span type.
Whatever the SDK withheld (`trace_include_sensitive_data=False`) is not in
its span data, so it is not in our line either.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from halo_live.exporter import canonical

SCOPE_NAME = "openai-agents-sdk"
PROVIDER = "openai"

# SDK span type -> inference.observation_kind (as the reference maps them). The
# same names go in openinference.span.kind (the reference counts tool errors by
# it), where other types are CHAIN rather than SPAN.
OBSERVATION_KIND_BY_TYPE = {
    "agent": canonical.OBS_AGENT,
    "generation": canonical.OBS_LLM,
    "response": canonical.OBS_LLM,
    "function": canonical.OBS_TOOL,
    "mcp_tools": canonical.OBS_TOOL,
    "handoff": canonical.OBS_CHAIN,
    "guardrail": canonical.OBS_GUARDRAIL,
}
_CLIENT_TYPES = ("generation", "response", "transcription", "speech")

# Attribute names the SDK mapping adds beyond format.py's upstream ones.
A_INVOCATION_PARAMS = "llm.invocation_parameters"
A_TOKENS_TOTAL = "llm.token_count.total"
A_TOKENS_CACHED = "llm.token_count.prompt_cached"
A_TOKENS_REASONING = "llm.token_count.completion_reasoning"
A_RESPONSE_ID = "llm.response.id"
A_AGENT_HANDOFFS = "agent.handoffs"
A_AGENT_TOOLS = "agent.tools"
A_AGENT_OUTPUT_TYPE = "agent.output_type"
A_HANDOFF_FROM = "agent.handoff.from"
A_HANDOFF_TO = "agent.handoff.to"
A_WORKFLOW_NAME = "agent.workflow.name"
A_WORKFLOW_GROUP = "agent.workflow.group_id"
A_WORKFLOW_META = "agent.workflow.metadata."
A_GUARDRAIL_NAME = "guardrail.name"
A_GUARDRAIL_TRIGGERED = "guardrail.triggered"
A_MCP_DATA = "mcp.data"
A_MCP_SERVER = "mcp.server"
A_MCP_LISTED = "mcp.tools.listed"
A_SDK_TYPE = "sdk.span.type"
A_SDK_NAME = "sdk.span.name"
A_SDK_DATA = "sdk.data."
A_SDK_METADATA = "sdk.span.metadata."
A_SDK_TRACE_ID = "sdk.trace_id"
A_SDK_SPAN_ID = "sdk.span_id"


@dataclass(frozen=True)
class TraceInfo:
    """What the SDK trace knows that its spans don't: workflow, group, metadata."""

    workflow_name: str | None = None
    group_id: str | None = None
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ExportContext:
    """Per-processor identity stamped on every line."""

    project_id: str = ""
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    # OpenInference's per-message keys (`llm.input_messages.0.message.content`, ...): the
    # same conversation a third time, which neither halo's tools nor the reference's show.
    flat_messages: bool = False


@lru_cache(maxsize=1)
def sdk_version() -> str:
    """The installed openai-agents version (the scope version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openai-agents")
    except PackageNotFoundError:  # not installed as a distribution: still write lines
        return "unknown"


_HEX = frozenset(string.hexdigits)


@lru_cache(maxsize=65536)
def sdk_id(value: str | None, prefix: str) -> str:
    """SDK id ("trace_<32 hex>", "span_<24 hex>") -> lowercase hex.

    Trace ids are padded to 32 digits; ids that aren't hex (custom ones) hash
    to 32 (trace) or 16 (span) digits, the same way every time.
    """
    if not value:
        return ""
    text = value[len(prefix):] if value.startswith(prefix) else value
    if text and len(text) <= 32 and _HEX.issuperset(text):
        return text.lower().rjust(32, "0") if prefix == "trace_" else text.lower()
    size = 16 if prefix == "trace_" else 8
    return hashlib.blake2b(value.encode(), digest_size=size).hexdigest()


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=_to_jsonable).decode()


def _to_jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


def _scalar_or_json(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(x, (str, int, float, bool)) for x in value):
        return list(value)  # homogeneous-ish arrays stay arrays, as in OTel
    return _json(value)


def _flatten(prefix: str, data: Mapping[str, Any] | None, out: dict[str, Any],
             skip: tuple[str, ...] = ()) -> None:
    for key, value in (data or {}).items():
        if value is not None and key not in skip:
            out[f"{prefix}{key}"] = _scalar_or_json(value)


def _usage(attrs: dict[str, Any], usage: Mapping[str, Any] | None) -> None:
    if not usage:
        return
    attrs[canonical.OI_TOKENS_PROMPT] = canonical.as_int(usage.get("input_tokens", usage.get("prompt_tokens")))
    attrs[canonical.OI_TOKENS_COMPLETION] = canonical.as_int(usage.get("output_tokens", usage.get("completion_tokens")))
    attrs[A_TOKENS_TOTAL] = canonical.as_int(usage.get("total_tokens"))
    details_in = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    details_out = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    if isinstance(details_in, Mapping):
        attrs[A_TOKENS_CACHED] = canonical.as_int(details_in.get("cached_tokens"))
    if isinstance(details_out, Mapping):
        attrs[A_TOKENS_REASONING] = canonical.as_int(details_out.get("reasoning_tokens"))


def expand_messages(prefix: str, messages: Iterable[Any] | None, out: dict[str, Any]) -> None:
    """OpenInference's flat `prefix.N.message.*` keys, for viewers that read them natively."""
    for i, msg in enumerate(messages or ()):
        if not isinstance(msg, Mapping):
            continue
        head = f"{prefix}.{i}.message."
        if msg.get("role") is not None:
            out[head + "role"] = msg["role"]
        content = msg.get("content")
        if content is not None:
            out[head + "content"] = content if isinstance(content, str) else _json(content)
        for j, call in enumerate(msg.get("tool_calls") or ()):
            if isinstance(call, Mapping):
                fn = call.get("function") or {}
                tc = f"{head}tool_calls.{j}.tool_call."
                out[tc + "id"] = call.get("id")
                out[tc + "function.name"] = fn.get("name")
                out[tc + "function.arguments"] = fn.get("arguments")
        if msg.get("tool_call_id"):
            out[head + "tool_call_id"] = msg["tool_call_id"]
        if msg.get("name"):
            out[head + "name"] = msg["name"]


# --- per span type ---------------------------------------------------------------------------


def _agent(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    attrs[canonical.OI_AGENT_NAME] = d.get("name") or ""
    attrs[A_AGENT_HANDOFFS] = _json(d.get("handoffs"))
    attrs[A_AGENT_TOOLS] = _json(d.get("tools"))
    attrs[A_AGENT_OUTPUT_TYPE] = d.get("output_type")


def _generation(d: Mapping[str, Any], attrs: dict[str, Any], flat: bool) -> None:
    # The conversation is written once, as the `llm.*_messages` JSON both halo's and the
    # reference's views show; `output.value` adds the answer's text when there is one.
    attrs[canonical.OI_LLM_PROVIDER] = PROVIDER
    attrs[canonical.OI_LLM_MODEL_NAME] = d.get("model")
    attrs[A_INVOCATION_PARAMS] = _json(d.get("model_config"))
    inputs, outputs = d.get("input"), d.get("output")
    if inputs is not None:
        attrs[canonical.OI_INPUT_MESSAGES] = _json(list(inputs))
    if outputs is not None:
        attrs[canonical.OI_OUTPUT_MESSAGES] = _json(list(outputs))
        attrs[canonical.OI_OUTPUT_VALUE] = _output_text(outputs)
    _usage(attrs, d.get("usage"))
    if flat:
        expand_messages(canonical.OI_INPUT_MESSAGES, inputs, attrs)
        expand_messages(canonical.OI_OUTPUT_MESSAGES, outputs, attrs)


def _output_text(outputs: Iterable[Any]) -> str | None:
    """The assistant text of a Chat Completions output list (None if it only called tools)."""
    texts: list[str] = []
    for msg in outputs or ():
        if isinstance(msg, Mapping):
            content = msg.get("content")
            if isinstance(content, str) and content:
                texts.append(content)
            elif isinstance(msg.get("output"), list):  # a Responses object dumped by the adapter
                texts.extend(_response_texts(msg["output"]))
    return "\n".join(texts) or None


def _response_texts(items: Iterable[Any]) -> list[str]:
    texts = []
    for item in items or ():
        if isinstance(item, Mapping) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return texts


_INVOCATION_FIELDS = ("temperature", "top_p", "max_output_tokens", "tool_choice",
                      "parallel_tool_calls", "truncation", "reasoning", "text")


def _response(d: Mapping[str, Any], span_data: Any, attrs: dict[str, Any], flat: bool) -> None:
    attrs[canonical.OI_LLM_PROVIDER] = PROVIDER
    attrs[A_RESPONSE_ID] = d.get("response_id")
    response = getattr(span_data, "response", None)  # only set when the SDK records data
    usage = d.get("usage")
    if response is not None:
        body = response.model_dump(mode="json", exclude_none=True)
        attrs[canonical.OI_LLM_MODEL_NAME] = body.get("model")
        attrs[A_INVOCATION_PARAMS] = _json({k: body[k] for k in _INVOCATION_FIELDS if k in body})
        output = body.get("output") or []
        attrs[canonical.OI_OUTPUT_MESSAGES] = _json(output)
        attrs[canonical.OI_OUTPUT_VALUE] = "\n".join(_response_texts(output)) or None
        if flat:
            expand_messages(canonical.OI_OUTPUT_MESSAGES, output, attrs)
        if usage is None:
            usage = body.get("usage")
        raw_input = getattr(span_data, "input", None)
        messages: list[Any] = []
        if body.get("instructions"):
            messages.append({"role": "system", "content": body["instructions"]})
        if isinstance(raw_input, str):
            messages.append({"role": "user", "content": raw_input})
        elif raw_input is not None:
            messages.extend(orjson.loads(_json(list(raw_input)) or "[]"))
        if messages or raw_input is not None:
            # the instructions and the input, once: `input.value` would repeat the input
            attrs[canonical.OI_INPUT_MESSAGES] = _json(messages)
            if flat:
                expand_messages(canonical.OI_INPUT_MESSAGES, messages, attrs)
    _usage(attrs, usage)


def _function(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    attrs[canonical.OI_TOOL_NAME] = d.get("name")
    attrs[canonical.OI_INPUT_VALUE] = d.get("input")
    attrs[canonical.OI_OUTPUT_VALUE] = d.get("output")
    attrs[A_MCP_DATA] = _json(d.get("mcp_data"))


def _mcp_tools(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    attrs[A_MCP_SERVER] = d.get("server")
    attrs[A_MCP_LISTED] = _json(d.get("result"))


def _handoff(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    attrs[A_HANDOFF_FROM] = d.get("from_agent")
    attrs[A_HANDOFF_TO] = d.get("to_agent")


def _guardrail(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    attrs[A_GUARDRAIL_NAME] = d.get("name")
    attrs[A_GUARDRAIL_TRIGGERED] = bool(d.get("triggered"))


def _media(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    # transcription / speech: a model call whose payload is audio or text.
    attrs[canonical.OI_LLM_PROVIDER] = PROVIDER
    attrs[canonical.OI_LLM_MODEL_NAME] = d.get("model")
    attrs[A_INVOCATION_PARAMS] = _json(d.get("model_config"))
    attrs[canonical.OI_INPUT_VALUE] = _scalar_or_json(d.get("input"))
    attrs[canonical.OI_OUTPUT_VALUE] = _scalar_or_json(d.get("output"))
    _flatten(A_SDK_DATA, d, attrs, skip=("type", "input", "output", "model", "model_config"))


def is_outcome(span_type: str, d: Mapping[str, Any]) -> bool:
    """A `record_outcome()` span: a custom span named `gen_ai.evaluation.result`."""
    return span_type == "custom" and d.get("name") == canonical.EVALUATION_RESULT


def _outcome(d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    # Its attributes under their own names (the projection reads them), not as sdk.data.*.
    data = d.get("data") if isinstance(d.get("data"), Mapping) else {}
    attrs[canonical.OI_SPAN_KIND] = canonical.OI_KIND_EVALUATOR
    attrs.update({key: data[key] for key in canonical.OUTCOME_KEYS if key in data})


def _generic(span_type: str, d: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    # custom, task, turn, speech_group and any type a later SDK adds.
    attrs[A_SDK_TYPE] = span_type
    if d.get("name") is not None:
        attrs[A_SDK_NAME] = d.get("name")
    data = d.get("data")
    if isinstance(data, Mapping):
        _flatten(A_SDK_DATA, data, attrs)
    _flatten(A_SDK_DATA, d, attrs, skip=("type", "name", "data"))


def span_type_of(span_data: Any, exported: Mapping[str, Any]) -> str:
    """The SDK's own type (`task`/`turn` export themselves as `custom`)."""
    try:
        kind = span_data.type
    except Exception:
        kind = None
    return str(kind or exported.get("type") or "custom")


def span_name(span_type: str, d: Mapping[str, Any]) -> str:
    """`type.label` as the reference names spans: the name or model, a turn's number,
    a handoff's target agent, an MCP server."""
    data = d.get("data") if isinstance(d.get("data"), Mapping) else {}
    if span_type in ("task", "turn"):
        label = data.get("name") if span_type == "task" else data.get("turn")
    elif span_type == "handoff":
        label = d.get("to_agent")
    elif span_type == "mcp_tools":
        label = d.get("server")
    else:
        label = d.get("name") or d.get("model")
    return f"{span_type}.{label}" if label not in (None, "") else span_type


def span_to_line(
    span: Any,
    *,
    ctx: ExportContext,
    trace: TraceInfo | None = None,
    agent_name: str | None = None,
    model_name: str | None = None,
) -> dict[str, Any]:
    """One finished SDK span as a canonical line dict.

    `agent_name` is the enclosing agent seen at span start; `trace` the
    span's trace as seen at trace start; `model_name` the model a Responses
    span called, seen at its start (the span itself holds it only with the
    SDK's sensitive data on).
    """
    raw = span.export() or {}
    span_data = span.span_data
    d = raw.get("span_data") or {}
    span_type = span_type_of(span_data, d)
    attrs: dict[str, Any] = {}
    attrs[canonical.OI_SPAN_KIND] = OBSERVATION_KIND_BY_TYPE.get(span_type, canonical.OBS_CHAIN)
    attrs[canonical.INF_OBSERVATION_KIND] = OBSERVATION_KIND_BY_TYPE.get(span_type, canonical.OBS_SPAN)

    if span_type == "agent":
        _agent(d, attrs)
    elif span_type == "generation":
        _generation(d, attrs, ctx.flat_messages)
    elif span_type == "response":
        _response(d, span_data, attrs, ctx.flat_messages)
        if not attrs.get(canonical.OI_LLM_MODEL_NAME) and model_name:
            attrs[canonical.OI_LLM_MODEL_NAME] = model_name
    elif span_type == "function":
        _function(d, attrs)
    elif span_type == "mcp_tools":
        _mcp_tools(d, attrs)
    elif span_type == "handoff":
        _handoff(d, attrs)
    elif span_type == "guardrail":
        _guardrail(d, attrs)
    elif span_type in ("transcription", "speech"):
        _media(d, attrs)
    elif is_outcome(span_type, d):
        _outcome(d, attrs)
    else:
        _generic(span_type, d, attrs)

    _flatten(A_SDK_METADATA, raw.get("metadata"), attrs)
    if trace is not None:
        if trace.workflow_name:
            attrs[A_WORKFLOW_NAME] = trace.workflow_name
        if trace.group_id:
            attrs[A_WORKFLOW_GROUP] = trace.group_id
            attrs[canonical.INF_SESSION_ID] = trace.group_id
        if trace.metadata:
            _flatten(A_WORKFLOW_META, trace.metadata, attrs)
            user = trace.metadata.get("user_id") or trace.metadata.get(canonical.OI_USER_ID)
            if isinstance(user, str) and user:
                attrs.setdefault(canonical.OI_USER_ID, user)

    error = raw.get("error")
    if error:
        message = str(error.get("message") or "") or "error"
        status_code = canonical.STATUS_ERROR
        if error.get("data") is not None:
            attrs[canonical.SDK_ERROR_DATA] = _json(error.get("data"))
    else:
        message, status_code = "", canonical.STATUS_OK

    trace_id = sdk_id(raw.get("trace_id") or span.trace_id, "trace_")
    span_id = sdk_id(raw.get("id") or span.span_id, "span_")
    if raw.get("trace_id") and not raw["trace_id"].startswith("trace_"):
        attrs[A_SDK_TRACE_ID] = raw["trace_id"]

    attrs = {k: v for k, v in attrs.items() if v is not None}
    attrs.update(canonical.project(attrs, project_id=ctx.project_id, resource_attrs=ctx.resource_attributes,
                           agent_name_hint=agent_name))
    start = canonical.iso_from_datetime(raw.get("started_at"))
    end = canonical.iso_from_datetime(raw.get("ended_at")) or start
    name = canonical.EVALUATION_RESULT if is_outcome(span_type, d) else span_name(span_type, d)
    if span_type == "response" and attrs.get(canonical.OI_LLM_MODEL_NAME):  # known from the response body only
        name = f"response.{attrs[canonical.OI_LLM_MODEL_NAME]}"
    return canonical.canonical_line(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=sdk_id(raw.get("parent_id"), "span_"),
        name=name,
        kind=canonical.SPAN_KIND_CLIENT if span_type in _CLIENT_TYPES else canonical.SPAN_KIND_INTERNAL,
        start_time=start or end,
        end_time=end,
        status_code=status_code,
        status_message=message,
        resource_attributes=ctx.resource_attributes,
        scope_name=SCOPE_NAME,
        scope_version=sdk_version(),
        attributes=attrs,
    )
