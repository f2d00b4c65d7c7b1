"""OTLP trace requests (protobuf or OTLP/JSON) -> canonical HALO lines.

Both encodings walk the same shape (resource spans -> scope spans -> spans)
and end in `exporter.format.canonical_line` + `project`, so a span received
over OTLP reads exactly like one written by `HaloSpanExporter`.

A request that cannot be decoded raises `InvalidRequest` (HTTP 400 / gRPC
INVALID_ARGUMENT, nothing written). A single unusable span (bad id, no name,
an attribute value that does not parse) is rejected and counted instead, so
the rest of the request is still written and the sender learns about it
through OTLP's `partial_success`.

Canonical extras beyond the reference's fields go at the top level (the
reference forbids extra keys inside status/resource/scope): `events`,
`links`, non-zero `dropped_*_count`s, `scope_attributes`, `schema_url`s.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporter import format as fmt

# Keys of the top-level extras and of the objects inside events / links.
EVENT_NAME = "name"
EVENT_TIME = "time"
EVENT_ATTRIBUTES = "attributes"
LINK_TRACE_ID = "trace_id"
LINK_SPAN_ID = "span_id"
LINK_TRACE_STATE = "trace_state"
LINK_ATTRIBUTES = "attributes"
DROPPED_ATTRIBUTES = "dropped_attributes_count"
DROPPED_EVENTS = "dropped_events_count"
DROPPED_LINKS = "dropped_links_count"
SCOPE_ATTRIBUTES = "scope_attributes"
RESOURCE_SCHEMA_URL = "resource_schema_url"
SCOPE_SCHEMA_URL = "scope_schema_url"

# OTel semantic conventions of an exception event.
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"

_MAX_MESSAGES = 3  # problems quoted in partial_success; the count says the rest


class InvalidRequest(ValueError):
    """The request as a whole cannot be decoded; nothing of it may be written."""


class _SpanProblem(ValueError):
    """One span cannot be converted; it is rejected, the others go on."""


@dataclass
class Conversion:
    """Encoded lines of the usable spans, plus what was rejected and why."""

    lines: list[bytes] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        head = "; ".join(self.problems[:_MAX_MESSAGES])
        more = " ..." if self.rejected > len(self.problems[:_MAX_MESSAGES]) else ""
        return f"{self.rejected} span(s) rejected: {head}{more}"

    def reject(self, where: str, problem: str) -> None:
        self.rejected += 1
        if len(self.problems) < _MAX_MESSAGES:
            self.problems.append(f"{where}: {problem}")


# --- the span -> line step shared by both encodings -----------------------------------


def _exception_message(events: list[dict[str, Any]]) -> str:
    for event in events:
        if event[EVENT_NAME] == EXCEPTION_EVENT:
            attrs = event[EVENT_ATTRIBUTES]
            etype, emsg = attrs.get(EXCEPTION_TYPE), attrs.get(EXCEPTION_MESSAGE)
            if etype and emsg:
                return f"{etype}: {emsg}"
            if emsg or etype:
                return str(emsg or etype)
    return ""


def _line(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    trace_state: str,
    name: str,
    kind: str,
    start_ns: int,
    end_ns: int,
    status_code: str,
    status_message: str,
    attributes: dict[str, Any],
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
    dropped: tuple[int, int, int],
    ctx: _ScopeContext,
) -> bytes:
    """The encoded line, byte for byte `encode_line(canonical_line(...))`.

    Built in two halves around the resource and scope, which are encoded once
    per scope (`_ScopeContext.shared`): on a hot receiver that is a third of
    the encoding work saved, and the key order stays the canonical one.
    """
    if not status_message and events:
        status_message = _exception_message(events)
    attributes.update(
        fmt.project(attributes, project_id=ctx.project_id, resource_attrs=ctx.resource_attrs)
    )
    head = {
        fmt.TRACE_ID: trace_id,
        fmt.SPAN_ID: span_id,
        fmt.PARENT_SPAN_ID: parent_span_id,
        fmt.TRACE_STATE: trace_state,
        fmt.NAME: name,
        fmt.KIND: kind,
        fmt.START_TIME: _iso(start_ns),
        fmt.END_TIME: _iso(end_ns),
        fmt.STATUS: {fmt.STATUS_CODE_FIELD: status_code, fmt.STATUS_MESSAGE_FIELD: status_message},
    }
    tail: dict[str, Any] = {fmt.ATTRIBUTES: attributes}
    tail.update(ctx.extra)
    if events:
        tail[fmt.EVENTS] = events
    if links:
        tail[fmt.LINKS] = links
    for key, count in zip((DROPPED_ATTRIBUTES, DROPPED_EVENTS, DROPPED_LINKS), dropped):
        if count:
            tail[key] = count
    # '{head...}\n' + '{tail...}\n' -> '{head..., resource, scope, tail...}\n'
    return b"".join((fmt.encode_line(head)[:-2], ctx.shared, fmt.encode_line(tail)[1:]))


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return fmt.iso_from_ns(seconds * 1_000_000_000)[:-11]  # "YYYY-MM-DDTHH:MM:SS"


def _iso(ns: int) -> str:
    """`fmt.iso_from_ns`, with the date part cached (spans of a batch share their seconds)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return f"{_iso_seconds(seconds)}.{frac:09d}Z"


@dataclass
class _ScopeContext:
    project_id: str
    resource_attrs: dict[str, Any]
    scope_name: str
    scope_version: str
    extra: dict[str, Any]
    shared: bytes = b""  # ',"resource":{...},"scope":{...},' encoded once

    def __post_init__(self) -> None:
        both = fmt.encode_line({
            fmt.RESOURCE: {fmt.ATTRIBUTES: self.resource_attrs},
            fmt.SCOPE: {fmt.SCOPE_NAME_FIELD: self.scope_name,
                        fmt.SCOPE_VERSION_FIELD: self.scope_version},
        })
        self.shared = b"," + both[1:-2] + b","


def _enum(names: tuple[str, ...], value: Any, what: str) -> str:
    if type(value) is int and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in names:
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    raise _SpanProblem(f"{what} {value!r} is not a known value")


def _check_ids(trace_id: str, span_id: str, parent: str) -> None:
    if len(trace_id) != 32 or trace_id == "0" * 32:
        raise _SpanProblem(f"trace_id {trace_id!r} is not 16 non-zero bytes")
    if len(span_id) != 16 or span_id == "0" * 16:
        raise _SpanProblem(f"span_id {span_id!r} is not 8 non-zero bytes")
    if parent and len(parent) != 16:
        raise _SpanProblem(f"parent_span_id {parent!r} is not 8 bytes")


# --- protobuf ---------------------------------------------------------------------------


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":  # by far the most common: skip the rest
        return value.string_value
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which == "double_value" and not math.isfinite(value.double_value):
        return str(value.double_value)  # JSON has no NaN/inf; keep the value readable
    return getattr(value, which)


def _pb_attrs(key_values: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in key_values}


def _pb_span(span: Any, ctx: _ScopeContext) -> bytes:
    trace_id = span.trace_id.hex()
    span_id = span.span_id.hex()
    parent = span.parent_span_id.hex()
    _check_ids(trace_id, span_id, parent)
    if not span.name:
        raise _SpanProblem("span has no name")
    events = [
        {EVENT_NAME: e.name, EVENT_TIME: fmt.iso_from_ns(e.time_unix_nano),
         EVENT_ATTRIBUTES: _pb_attrs(e.attributes)}
        for e in span.events
    ]
    links = [
        {LINK_TRACE_ID: link.trace_id.hex(), LINK_SPAN_ID: link.span_id.hex(),
         LINK_TRACE_STATE: link.trace_state, LINK_ATTRIBUTES: _pb_attrs(link.attributes)}
        for link in span.links
    ]
    status = span.status
    return _line(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        trace_state=span.trace_state,
        name=span.name,
        kind=_enum(fmt.SPAN_KINDS, span.kind, "kind"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status_code=_enum(fmt.STATUS_CODES, status.code, "status code"),
        status_message=status.message,
        attributes=_pb_attrs(span.attributes),
        events=events,
        links=links,
        dropped=(span.dropped_attributes_count, span.dropped_events_count,
                 span.dropped_links_count),
        ctx=ctx,
    )


def convert_request(request: ExportTraceServiceRequest, *, project_id: str = "") -> Conversion:
    """Canonical lines for every usable span of a decoded protobuf request."""
    out = Conversion()
    for r, rs in enumerate(request.resource_spans):
        resource_attrs = _pb_attrs(rs.resource.attributes)
        for s, ss in enumerate(rs.scope_spans):
            extra: dict[str, Any] = {}
            if ss.scope.attributes:
                extra[SCOPE_ATTRIBUTES] = _pb_attrs(ss.scope.attributes)
            if rs.schema_url:
                extra[RESOURCE_SCHEMA_URL] = rs.schema_url
            if ss.schema_url:
                extra[SCOPE_SCHEMA_URL] = ss.schema_url
            ctx = _ScopeContext(project_id, resource_attrs, ss.scope.name, ss.scope.version, extra)
            for i, span in enumerate(ss.spans):
                try:
                    out.lines.append(_pb_span(span, ctx))
                except _SpanProblem as exc:
                    out.reject(f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]", str(exc))
    return out


def from_protobuf(body: bytes, *, project_id: str = "") -> Conversion:
    """Decode a serialized `ExportTraceServiceRequest` and convert it."""
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"body is not an OTLP ExportTraceServiceRequest protobuf: {exc}") from None
    return convert_request(request, project_id=project_id)


# --- OTLP/JSON --------------------------------------------------------------------------
# The protobuf JSON mapping: lowerCamelCase names (the original snake_case names are
# accepted too), ids as hex, enums as numbers (or names), 64-bit ints as strings.


def _get(obj: Mapping[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake, default)
    return default if value is None else value


def _as_list(value: Any, what: str, error: Callable[[str], Exception]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise error(f"{what} must be a list")
    return value


def _as_obj(value: Any, what: str, error: Callable[[str], Exception]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(f"{what} must be an object")
    return value


def _json_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _SpanProblem(f"{what} {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _SpanProblem(f"{what} {value!r} is not an integer")


def _json_double(value: Any, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity", "-Infinity" and numbers as strings
        except ValueError:
            pass
    raise _SpanProblem(f"{what} {value!r} is not a number")


def _json_value(value: Any, key: str) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    what = f"attribute {key!r}"
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value", "")
        if not isinstance(text, str):
            raise _SpanProblem(f"{what}: stringValue {text!r} is not a string")
        return text
    if "intValue" in value or "int_value" in value:
        return _json_int(_get(value, "intValue", "int_value"), f"{what}: intValue")
    if "doubleValue" in value or "double_value" in value:
        number = _json_double(_get(value, "doubleValue", "double_value"), f"{what}: doubleValue")
        return number if math.isfinite(number) else str(number)
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        if not isinstance(flag, bool):
            raise _SpanProblem(f"{what}: boolValue {flag!r} is not a boolean")
        return flag
    if "arrayValue" in value or "array_value" in value:
        inner = _as_obj(_get(value, "arrayValue", "array_value"), what, _SpanProblem)
        return [_json_value(v, key) for v in _as_list(inner.get("values"), what, _SpanProblem)]
    if "kvlistValue" in value or "kvlist_value" in value:
        inner = _as_obj(_get(value, "kvlistValue", "kvlist_value"), what, _SpanProblem)
        return _json_attrs(inner.get("values"))
    if "bytesValue" in value or "bytes_value" in value:
        raw = _get(value, "bytesValue", "bytes_value", "")
        try:
            base64.b64decode(raw, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _SpanProblem(f"{what}: bytesValue is not base64") from None
        return raw
    raise _SpanProblem(f"{what}: unknown value type {sorted(value)}")


def _json_attrs(key_values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in _as_list(key_values, "attributes", _SpanProblem):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise _SpanProblem(f"attribute {kv!r} has no string key")
        out[kv["key"]] = _json_value(kv.get("value"), kv["key"])
    return out


def _json_id(value: Any, what: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _SpanProblem(f"{what} {value!r} is not a hex string")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise _SpanProblem(f"{what} {value!r} is not hex") from None
    return value.lower()


def _json_span(span: Any, ctx: _ScopeContext) -> bytes:
    if not isinstance(span, dict):
        raise _SpanProblem("span is not an object")
    trace_id = _json_id(_get(span, "traceId", "trace_id"), "traceId")
    span_id = _json_id(_get(span, "spanId", "span_id"), "spanId")
    parent = _json_id(_get(span, "parentSpanId", "parent_span_id"), "parentSpanId")
    _check_ids(trace_id, span_id, parent)
    name = span.get("name")
    if not isinstance(name, str) or not name:
        raise _SpanProblem("span has no name")
    events = []
    for e in _as_list(span.get("events"), "events", _SpanProblem):
        e = _as_obj(e, "event", _SpanProblem)
        events.append({
            EVENT_NAME: str(e.get("name") or ""),
            EVENT_TIME: fmt.iso_from_ns(
                _json_int(_get(e, "timeUnixNano", "time_unix_nano", 0), "event timeUnixNano")),
            EVENT_ATTRIBUTES: _json_attrs(e.get("attributes")),
        })
    links = []
    for link in _as_list(span.get("links"), "links", _SpanProblem):
        link = _as_obj(link, "link", _SpanProblem)
        links.append({
            LINK_TRACE_ID: _json_id(_get(link, "traceId", "trace_id"), "link traceId"),
            LINK_SPAN_ID: _json_id(_get(link, "spanId", "span_id"), "link spanId"),
            LINK_TRACE_STATE: str(_get(link, "traceState", "trace_state", "")),
            LINK_ATTRIBUTES: _json_attrs(link.get("attributes")),
        })
    status = _as_obj(span.get("status"), "status", _SpanProblem)
    message = status.get("message") or ""
    return _line(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        trace_state=str(_get(span, "traceState", "trace_state", "")),
        name=name,
        kind=_enum(fmt.SPAN_KINDS, span.get("kind", 0), "kind"),
        start_ns=_json_int(_get(span, "startTimeUnixNano", "start_time_unix_nano", 0),
                           "startTimeUnixNano"),
        end_ns=_json_int(_get(span, "endTimeUnixNano", "end_time_unix_nano", 0), "endTimeUnixNano"),
        status_code=_enum(fmt.STATUS_CODES, status.get("code", 0), "status code"),
        status_message=message if isinstance(message, str) else str(message),
        attributes=_json_attrs(span.get("attributes")),
        events=events,
        links=links,
        dropped=tuple(
            _json_int(_get(span, camel, snake, 0), camel)
            for camel, snake in (("droppedAttributesCount", DROPPED_ATTRIBUTES),
                                 ("droppedEventsCount", DROPPED_EVENTS),
                                 ("droppedLinksCount", DROPPED_LINKS))
        ),  # type: ignore[arg-type]
        ctx=ctx,
    )


def from_json(body: bytes, *, project_id: str = "") -> Conversion:
    """Decode an OTLP/JSON `ExportTraceServiceRequest` and convert it."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidRequest("body is not an OTLP/JSON ExportTraceServiceRequest object")
    out = Conversion()
    resource_spans = _as_list(_get(request, "resourceSpans", "resource_spans"), "resourceSpans",
                              InvalidRequest)
    for r, rs in enumerate(resource_spans):
        rs = _as_obj(rs, f"resourceSpans[{r}]", InvalidRequest)
        resource = _as_obj(rs.get("resource"), f"resourceSpans[{r}].resource", InvalidRequest)
        try:
            resource_attrs = _json_attrs(resource.get("attributes"))
        except _SpanProblem as exc:
            raise InvalidRequest(f"resourceSpans[{r}].resource: {exc}") from None
        scope_spans = _as_list(_get(rs, "scopeSpans", "scope_spans"),
                               f"resourceSpans[{r}].scopeSpans", InvalidRequest)
        for s, ss in enumerate(scope_spans):
            where = f"resourceSpans[{r}].scopeSpans[{s}]"
            ss = _as_obj(ss, where, InvalidRequest)
            scope = _as_obj(ss.get("scope"), f"{where}.scope", InvalidRequest)
            extra: dict[str, Any] = {}
            try:
                if scope.get("attributes"):
                    extra[SCOPE_ATTRIBUTES] = _json_attrs(scope.get("attributes"))
            except _SpanProblem as exc:
                raise InvalidRequest(f"{where}.scope: {exc}") from None
            if _get(rs, "schemaUrl", "schema_url"):
                extra[RESOURCE_SCHEMA_URL] = str(_get(rs, "schemaUrl", "schema_url"))
            if _get(ss, "schemaUrl", "schema_url"):
                extra[SCOPE_SCHEMA_URL] = str(_get(ss, "schemaUrl", "schema_url"))
            ctx = _ScopeContext(project_id, resource_attrs, str(scope.get("name") or ""),
                                str(scope.get("version") or ""), extra)
            for i, span in enumerate(_as_list(ss.get("spans"), f"{where}.spans", InvalidRequest)):
                try:
                    out.lines.append(_json_span(span, ctx))
                except _SpanProblem as exc:
                    out.reject(f"{where}.spans[{i}]", str(exc))
    return out
