"""The canonical HALO span line: every field name, enum and projection rule.

One module owns these names. Producers (the Agents SDK processor, the OTel
exporter, the OTLP receiver) build lines with `canonical_line` and project
`inference.*` with `project`; the indexer reads with the same constants.
Nobody else spells a key.

The line is the format halo-engine 0.3.5 reads: its `status`, `resource` and
`scope` objects are validated strictly, so nothing beyond the keys below may
appear inside them. Extra data (events, links, schema urls, dropped counts)
goes at the top level, which the reference tolerates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

# --- top-level fields ---------------------------------------------------------
TRACE_ID = "trace_id"
SPAN_ID = "span_id"
PARENT_SPAN_ID = "parent_span_id"
TRACE_STATE = "trace_state"
NAME = "name"
KIND = "kind"
START_TIME = "start_time"
END_TIME = "end_time"
STATUS = "status"
RESOURCE = "resource"
SCOPE = "scope"
ATTRIBUTES = "attributes"
EVENTS = "events"
LINKS = "links"
# Inside status / resource / scope (the reference forbids any other key there).
STATUS_CODE_FIELD = "code"
STATUS_MESSAGE_FIELD = "message"
SCOPE_NAME_FIELD = "name"
SCOPE_VERSION_FIELD = "version"

REQUIRED_FIELDS = (
    TRACE_ID, SPAN_ID, NAME, KIND, START_TIME, END_TIME, STATUS, RESOURCE, SCOPE, ATTRIBUTES,
)

# --- enums ----------------------------------------------------------------------
STATUS_UNSET = "STATUS_CODE_UNSET"
STATUS_OK = "STATUS_CODE_OK"
STATUS_ERROR = "STATUS_CODE_ERROR"
STATUS_CODES = (STATUS_UNSET, STATUS_OK, STATUS_ERROR)  # index = OTLP enum number

SPAN_KIND_UNSPECIFIED = "SPAN_KIND_UNSPECIFIED"
SPAN_KIND_INTERNAL = "SPAN_KIND_INTERNAL"
SPAN_KIND_SERVER = "SPAN_KIND_SERVER"
SPAN_KIND_CLIENT = "SPAN_KIND_CLIENT"
SPAN_KIND_PRODUCER = "SPAN_KIND_PRODUCER"
SPAN_KIND_CONSUMER = "SPAN_KIND_CONSUMER"
SPAN_KINDS = (  # index = OTLP enum number
    SPAN_KIND_UNSPECIFIED, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER,
    SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER,
)

# inference.observation_kind values
OBS_AGENT = "AGENT"
OBS_LLM = "LLM"
OBS_TOOL = "TOOL"
OBS_CHAIN = "CHAIN"
OBS_GUARDRAIL = "GUARDRAIL"
OBS_SPAN = "SPAN"
OBSERVATION_KINDS = (OBS_AGENT, OBS_LLM, OBS_TOOL, OBS_CHAIN, OBS_GUARDRAIL, OBS_SPAN)

# --- inference.* projection keys ----------------------------------------------
SCHEMA_VERSION = 1
INF_SCHEMA_VERSION = "inference.export.schema_version"
INF_PROJECT_ID = "inference.project_id"
DEFAULT_PROJECT_ID = "default"  # the project of a span whose producer names no project and no service
INF_OBSERVATION_KIND = "inference.observation_kind"
INF_LLM_PROVIDER = "inference.llm.provider"
INF_LLM_MODEL_NAME = "inference.llm.model_name"
INF_LLM_INPUT_TOKENS = "inference.llm.input_tokens"
INF_LLM_OUTPUT_TOKENS = "inference.llm.output_tokens"
INF_LLM_COST_TOTAL = "inference.llm.cost.total"
INF_USER_ID = "inference.user_id"
INF_SESSION_ID = "inference.session_id"
INF_AGENT_NAME = "inference.agent_name"
INF_AGENT_ID = "inference.agent_id"
# halo-live additions (the reference ignores unknown attributes).
INF_RUN_ID = "inference.run_id"

# --- upstream conventions we read --------------------------------------------
# OpenInference
OI_SPAN_KIND = "openinference.span.kind"
OI_LLM_MODEL_NAME = "llm.model_name"
OI_LLM_PROVIDER = "llm.provider"
OI_LLM_SYSTEM = "llm.system"
OI_TOKENS_PROMPT = "llm.token_count.prompt"
OI_TOKENS_COMPLETION = "llm.token_count.completion"
OI_COST_TOTAL = "llm.cost.total"
OI_INPUT_MESSAGES = "llm.input_messages"
OI_OUTPUT_MESSAGES = "llm.output_messages"
OI_INPUT_VALUE = "input.value"
OI_OUTPUT_VALUE = "output.value"
OI_TOOL_NAME = "tool.name"
OI_AGENT_NAME = "agent.name"
OI_AGENT_ID = "agent.id"
OI_SESSION_ID = "session.id"
OI_USER_ID = "user.id"
# OTel GenAI semantic conventions
GENAI_OPERATION = "gen_ai.operation.name"
GENAI_REQUEST_MODEL = "gen_ai.request.model"
GENAI_RESPONSE_MODEL = "gen_ai.response.model"
GENAI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GENAI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GENAI_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # older spelling
GENAI_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # older spelling
GENAI_AGENT_NAME = "gen_ai.agent.name"
GENAI_AGENT_ID = "gen_ai.agent.id"
GENAI_TOOL_NAME = "gen_ai.tool.name"
GENAI_CONVERSATION_ID = "gen_ai.conversation.id"
GENAI_PROVIDER = "gen_ai.provider.name"
GENAI_SYSTEM = "gen_ai.system"  # older spelling of the provider
# Resource
SERVICE_NAME = "service.name"
# Top-level extras beyond the reference's fields (it tolerates them there, not
# inside status/resource/scope): non-zero dropped counts, scope attributes, schema urls.
DROPPED_ATTRIBUTES = "dropped_attributes_count"
DROPPED_EVENTS = "dropped_events_count"
DROPPED_LINKS = "dropped_links_count"
SCOPE_ATTRIBUTES = "scope_attributes"
RESOURCE_SCHEMA_URL = "resource_schema_url"
SCOPE_SCHEMA_URL = "scope_schema_url"
# Keys inside each object of `events` and of `links`, and OTel's exception event
EVENT_NAME = "name"
EVENT_TIME = "time"
EVENT_ATTRIBUTES = "attributes"
LINK_TRACE_ID = "trace_id"
LINK_SPAN_ID = "span_id"
LINK_TRACE_STATE = "trace_state"
LINK_ATTRIBUTES = "attributes"
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
# The Agents SDK's span error data (JSON text; a tool error's cause is its "error")
SDK_ERROR_DATA = "sdk.error.data"

_OI_KIND_TO_OBS = {
    "LLM": OBS_LLM,
    "TOOL": OBS_TOOL,
    "AGENT": OBS_AGENT,
    "CHAIN": OBS_CHAIN,
    "GUARDRAIL": OBS_GUARDRAIL,
    # RETRIEVER, EMBEDDING, RERANKER, EVALUATOR, PROMPT, UNKNOWN -> SPAN
}
_GENAI_OP_TO_OBS = {
    "chat": OBS_LLM,
    "text_completion": OBS_LLM,
    "generate_content": OBS_LLM,
    "execute_tool": OBS_TOOL,
    "invoke_agent": OBS_AGENT,
    "create_agent": OBS_AGENT,
    "invoke_workflow": OBS_CHAIN,
    "handoff": OBS_CHAIN,  # as the Agents SDK processor maps a handoff
    "embeddings": OBS_SPAN,
    "retrieval": OBS_SPAN,
}

_MODEL_KEYS = (OI_LLM_MODEL_NAME, GENAI_RESPONSE_MODEL, GENAI_REQUEST_MODEL)
_PROVIDER_KEYS = (OI_LLM_PROVIDER, GENAI_PROVIDER, GENAI_SYSTEM, OI_LLM_SYSTEM)
_INPUT_TOKEN_KEYS = (OI_TOKENS_PROMPT, GENAI_INPUT_TOKENS, GENAI_PROMPT_TOKENS)
_OUTPUT_TOKEN_KEYS = (OI_TOKENS_COMPLETION, GENAI_OUTPUT_TOKENS, GENAI_COMPLETION_TOKENS)
_AGENT_NAME_KEYS = (OI_AGENT_NAME, GENAI_AGENT_NAME)
_AGENT_ID_KEYS = (OI_AGENT_ID, GENAI_AGENT_ID)
_TOOL_NAME_KEYS = (OI_TOOL_NAME, GENAI_TOOL_NAME)
_SESSION_KEYS = (OI_SESSION_ID, GENAI_CONVERSATION_ID)
_USER_KEYS = (OI_USER_ID,)


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def as_int(value: Any) -> int | None:
    """An integer count from an int, an integral float or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def observation_kind(attrs: Mapping[str, Any]) -> str:
    """A span's observation kind: the sender's own projected one, else what its
    upstream attributes imply (SPAN when unknown)."""
    own = attrs.get(INF_OBSERVATION_KIND)
    if own in OBSERVATION_KINDS:
        return own
    oi = attrs.get(OI_SPAN_KIND)
    if isinstance(oi, str) and oi.upper() in _OI_KIND_TO_OBS:
        return _OI_KIND_TO_OBS[oi.upper()]
    op = attrs.get(GENAI_OPERATION)
    if isinstance(op, str) and op in _GENAI_OP_TO_OBS:
        return _GENAI_OP_TO_OBS[op]
    if isinstance(oi, str) and oi:
        return OBS_SPAN
    if attrs.get(GENAI_TOOL_NAME) is not None:
        return OBS_TOOL
    return OBS_SPAN


def exception_message(events: Any) -> str:
    """"Type: message" of the first exception event in `events` ("" when there is none)."""
    for event in events if isinstance(events, list) else ():
        if not isinstance(event, dict) or event.get(EVENT_NAME) != EXCEPTION_EVENT:
            continue
        attrs = event.get(EVENT_ATTRIBUTES)
        attrs = attrs if isinstance(attrs, dict) else {}
        etype, emsg = attrs.get(EXCEPTION_TYPE), attrs.get(EXCEPTION_MESSAGE)
        if etype and emsg:
            return f"{etype}: {emsg}"
        if emsg or etype:
            return str(emsg or etype)
    return ""


def model_name(attrs: Mapping[str, Any]) -> str | None:
    """The model a span ran on: the projected name, else OpenInference, else GenAI."""
    value = attrs.get(INF_LLM_MODEL_NAME) or _first(attrs, _MODEL_KEYS)
    return value if isinstance(value, str) and value else None


def tool_name(attrs: Mapping[str, Any]) -> str | None:
    """The tool a TOOL span executed (`tool.name` or `gen_ai.tool.name`)."""
    value = _first(attrs, _TOOL_NAME_KEYS)
    return value if isinstance(value, str) and value else None


def agent_name(attrs: Mapping[str, Any]) -> str | None:
    """The agent a span ran under: the projected name, else the upstream one."""
    value = attrs.get(INF_AGENT_NAME) or _first(attrs, _AGENT_NAME_KEYS)
    return value if isinstance(value, str) and value else None


def project(
    attrs: Mapping[str, Any],
    *,
    project_id: str | None = None,
    resource_attrs: Mapping[str, Any] | None = None,
    agent_name_hint: str | None = None,
    events: Any = None,
) -> dict[str, Any]:
    """The `inference.*` keys for a span with upstream attributes `attrs`.

    Also `openinference.span.kind` (LLM/TOOL/AGENT/CHAIN/GUARDRAIL) from the
    projected kind when the sender set none; a sender's own value is kept.

    Keys the sender already projected win (a HALO-aware producer knows best),
    except that `project_id` follows the receiver rule: the span's own value,
    else the resource's `inference.project_id`, else the `project_id` given,
    else the resource's `service.name`, else "default" (never empty: the
    reference's own verifier rejects an empty project).
    `agent_name_hint` is the enclosing agent's name, for LLM/TOOL spans whose
    own attributes don't carry one. `events` (the line's `events`) may hold an
    OTel GenAI evaluation result: see `project_outcome`. Keys whose value is
    unknown are omitted, except the three that are always present.
    """
    resource_attrs = resource_attrs or {}
    out: dict[str, Any] = {INF_SCHEMA_VERSION: SCHEMA_VERSION}
    pid = (attrs.get(INF_PROJECT_ID) or resource_attrs.get(INF_PROJECT_ID) or project_id
           or resource_attrs.get(SERVICE_NAME) or DEFAULT_PROJECT_ID)
    out[INF_PROJECT_ID] = str(pid)
    kind = out[INF_OBSERVATION_KIND] = observation_kind(attrs)
    # The reference counts tool errors (and reads kinds) from `openinference.span.kind`
    # only: name the projected kind there too, so a GenAI `execute_tool` error counts.
    if attrs.get(OI_SPAN_KIND) in (None, "") and kind in _OI_KIND_TO_OBS.values():
        out[OI_SPAN_KIND] = kind

    def put(key: str, value: Any) -> None:
        existing = attrs.get(key)
        if existing is not None and existing != "":
            out[key] = existing
        elif value is not None and value != "":
            out[key] = value

    provider = _first(attrs, _PROVIDER_KEYS)
    if kind != OBS_LLM and model_name(attrs) is None:
        provider = None  # a blanket `gen_ai.system` on every span names no model call's provider
    put(INF_LLM_PROVIDER, provider if isinstance(provider, str) else None)
    put(INF_LLM_MODEL_NAME, model_name(attrs))
    put(INF_LLM_INPUT_TOKENS, as_int(_first(attrs, _INPUT_TOKEN_KEYS)))
    put(INF_LLM_OUTPUT_TOKENS, as_int(_first(attrs, _OUTPUT_TOKEN_KEYS)))
    put(INF_LLM_COST_TOTAL, attrs.get(OI_COST_TOTAL))
    put(INF_USER_ID, _first(attrs, _USER_KEYS) or resource_attrs.get(OI_USER_ID))
    put(INF_SESSION_ID, _first(attrs, _SESSION_KEYS))
    put(INF_AGENT_NAME, _first(attrs, _AGENT_NAME_KEYS) or agent_name_hint)
    put(INF_AGENT_ID, _first(attrs, _AGENT_ID_KEYS))
    run_id = resource_attrs.get(INF_RUN_ID)
    put(INF_RUN_ID, run_id if isinstance(run_id, str) else None)
    out.update(project_outcome(attrs, events))
    return out


# --- ids and times ------------------------------------------------------------------


def hex_id(value: bytes | int | str, width: int) -> str:
    """Lowercase hex of an id given as raw bytes, an int (zero-padded to `width`), or hex text."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int):
        return format(value, f"0{width}x")
    return value.lower()


def iso_from_ns(ns: int) -> str:
    """ISO-8601 UTC with 9 fractional digits and `Z`, from Unix nanoseconds."""
    seconds, frac = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def iso_from_datetime(value: datetime | str | None) -> str:
    """ISO-8601 UTC with 9 fractional digits and `Z`, from a datetime or its isoformat()."""
    if value is None or value == "":
        return ""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def ns_from_iso(value: str) -> int | None:
    """Unix nanoseconds from a canonical (or any ISO-8601) timestamp; None if unparsable."""
    if not value:
        return None
    try:
        head, dot, tail = value.rstrip("Z").partition(".")
        dt = datetime.fromisoformat(head).replace(tzinfo=timezone.utc)
        digits = "".join(ch for ch in tail if ch.isdigit())[:9] if dot else ""
        return int(dt.timestamp()) * 1_000_000_000 + int(digits.ljust(9, "0") or 0)
    except ValueError:
        return None


# --- the line ---------------------------------------------------------------------------


def canonical_line(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    name: str,
    kind: str,
    start_time: str,
    end_time: str,
    status_code: str,
    status_message: str,
    resource_attributes: Mapping[str, Any],
    scope_name: str,
    scope_version: str,
    attributes: Mapping[str, Any],
    trace_state: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One canonical span as a dict, keys in the reference's order; `extra` goes top level."""
    line: dict[str, Any] = {
        TRACE_ID: trace_id,
        SPAN_ID: span_id,
        PARENT_SPAN_ID: parent_span_id or "",
        TRACE_STATE: trace_state or "",
        NAME: name,
        KIND: kind,
        START_TIME: start_time,
        END_TIME: end_time,
        STATUS: {STATUS_CODE_FIELD: status_code, STATUS_MESSAGE_FIELD: status_message or ""},
        RESOURCE: {ATTRIBUTES: dict(resource_attributes)},
        SCOPE: {SCOPE_NAME_FIELD: scope_name or "", SCOPE_VERSION_FIELD: scope_version or ""},
        ATTRIBUTES: dict(attributes),
    }
    if extra:
        for key, value in extra.items():
            if key not in line:
                line[key] = value
    return line


_DUMPS_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def encode_line(line: Mapping[str, Any]) -> bytes:
    """A span dict as one `\\n`-terminated UTF-8 JSON line (values JSON can't hold become strings)."""
    return orjson.dumps(line, default=str, option=_DUMPS_OPTS)


# --- outcomes -------------------------------------------------------------------------------
# A task's outcome is a span in its trace: the OTel GenAI evaluation result's attributes
# plus what a benchmark needs, a task id and a boolean passed. The presence of
# `inference.outcome.passed` (true, false or null for unknown) marks the outcome span.
EVALUATION_RESULT = "gen_ai.evaluation.result"  # the OTel GenAI event, and our outcome span's name
GENAI_EVALUATION_NAME = "gen_ai.evaluation.name"
GENAI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
GENAI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
GENAI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
INF_OUTCOME_PASSED = "inference.outcome.passed"
INF_OUTCOME_TASK_ID = "inference.outcome.task_id"
OI_KIND_EVALUATOR = "EVALUATOR"  # OpenInference's span kind of an evaluation (observation kind SPAN)
DEFAULT_EVALUATION_NAME = "task_outcome"
EVALUATION_KEYS = (GENAI_EVALUATION_NAME, GENAI_EVALUATION_SCORE_VALUE, GENAI_EVALUATION_SCORE_LABEL,
                   GENAI_EVALUATION_EXPLANATION)
OUTCOME_KEYS = EVALUATION_KEYS + (INF_OUTCOME_PASSED, INF_OUTCOME_TASK_ID)
# Labels that say pass or fail when a sender gives a label but no boolean.
_PASS_LABELS = frozenset({"pass", "passed", "correct", "success", "succeeded", "true", "yes", "ok"})
_FAIL_LABELS = frozenset({"fail", "failed", "failure", "incorrect", "wrong", "false", "no", "error"})


def outcome_attributes(*, passed: bool | None = None, score: float | None = None,
                       task_id: str | None = None, label: str | None = None,
                       explanation: str | None = None, name: str | None = None) -> dict[str, Any]:
    """The attributes of an outcome span (None values left out); `ValueError` names a bad argument."""
    if passed is not None and not isinstance(passed, bool):
        raise ValueError(f"passed must be True, False or None, not {passed!r}")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))
                              or score != score or score in (float("inf"), float("-inf"))):
        raise ValueError(f"score must be a finite number or None, not {score!r}")
    out: dict[str, Any] = {GENAI_EVALUATION_NAME: str(name or DEFAULT_EVALUATION_NAME)}
    for key, value in ((GENAI_EVALUATION_SCORE_VALUE, score), (GENAI_EVALUATION_SCORE_LABEL, label),
                       (GENAI_EVALUATION_EXPLANATION, explanation), (INF_OUTCOME_PASSED, passed),
                       (INF_OUTCOME_TASK_ID, task_id)):
        if value is not None:
            out[key] = value if key in (GENAI_EVALUATION_SCORE_VALUE, INF_OUTCOME_PASSED) else str(value)
    return out


def passed_from(value: Any, label: Any) -> bool | None:
    """An outcome's passed: a boolean given, else what its label says, else None (unknown)."""
    if isinstance(value, bool):
        return value
    text = label.strip().lower() if isinstance(label, str) else None
    if text in _PASS_LABELS:
        return True
    if text in _FAIL_LABELS:
        return False
    return None


def project_outcome(attrs: Mapping[str, Any], events: Any = None) -> dict[str, Any]:
    """The outcome keys to add to a span: none unless it holds an evaluation result.

    A span already marked (`inference.outcome.passed` present) is left as its sender
    wrote it. A span carrying `gen_ai.evaluation.*` attributes is an outcome; so is one
    with a `gen_ai.evaluation.result` event (OTel GenAI's form), whose attributes are
    copied onto the span (the last such event wins). Passed comes from the boolean
    given, else from the label.
    """
    if INF_OUTCOME_PASSED in attrs:
        return {}
    source: Mapping[str, Any] = attrs
    out: dict[str, Any] = {}
    if not any(key in attrs for key in EVALUATION_KEYS):
        found = None
        for event in events if isinstance(events, list) else ():
            if isinstance(event, dict) and event.get(EVENT_NAME) == EVALUATION_RESULT:
                found = event.get(EVENT_ATTRIBUTES)
        if not isinstance(found, dict):
            return {}
        source = found
        out = {key: found[key] for key in OUTCOME_KEYS if found.get(key) is not None}
        out.setdefault(GENAI_EVALUATION_NAME, DEFAULT_EVALUATION_NAME)
    out[INF_OUTCOME_PASSED] = passed_from(source.get(INF_OUTCOME_PASSED),
                                          source.get(GENAI_EVALUATION_SCORE_LABEL))
    return out
