"""OTLP/JSON trace requests -> canonical HALO lines (the HTTP receiver's JSON body).

The protobuf JSON mapping as OTLP specifies it: lowerCamelCase field names
(the original snake_case names are accepted too), trace and span ids as hex
(not base64), enums as numbers (or their names), 64-bit integers as strings
(or numbers), doubles possibly as "NaN"/"Infinity". Spans go through the same
`build_line` as protobuf ones.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from halo_live.exporter import canonical
from halo_live.exporter.lineage import AgentLineage
from halo_live.exporter.otlp_convert import (
    Conversion, InvalidRequest, ScopeContext, SpanBatch, SpanParts, SpanProblem, check_ids, enum_name,
    span_head,
)

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # int64 values and fixed64 times both fit


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
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            pass
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or not _INT_MIN <= number <= _INT_MAX:
        raise SpanProblem(f"{what} {value!r} is not a 64-bit integer")
    return number


def _json_double(value: Any, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity", "-Infinity" and numbers as strings
        except ValueError:
            pass
    raise SpanProblem(f"{what} {value!r} is not a number")


def _json_value(value: Any, key: str) -> Any:
    if not isinstance(value, dict) or not value:
        return None
    what = f"attribute {key!r}"
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value", "")
        if not isinstance(text, str):
            raise SpanProblem(f"{what}: stringValue {text!r} is not a string")
        return text
    if "intValue" in value or "int_value" in value:
        return _json_int(_get(value, "intValue", "int_value"), f"{what}: intValue")
    if "doubleValue" in value or "double_value" in value:
        number = _json_double(_get(value, "doubleValue", "double_value"), f"{what}: doubleValue")
        return number if math.isfinite(number) else str(number)
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        if not isinstance(flag, bool):
            raise SpanProblem(f"{what}: boolValue {flag!r} is not a boolean")
        return flag
    if "arrayValue" in value or "array_value" in value:
        inner = _as_obj(_get(value, "arrayValue", "array_value"), what, SpanProblem)
        return [_json_value(v, key) for v in _as_list(inner.get("values"), what, SpanProblem)]
    if "kvlistValue" in value or "kvlist_value" in value:
        inner = _as_obj(_get(value, "kvlistValue", "kvlist_value"), what, SpanProblem)
        return _json_attrs(inner.get("values"))
    if "bytesValue" in value or "bytes_value" in value:
        raw = _get(value, "bytesValue", "bytes_value", "")
        try:
            base64.b64decode(raw, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise SpanProblem(f"{what}: bytesValue is not base64") from None
        return raw
    raise SpanProblem(f"{what}: unknown value type {sorted(value)}")


def _json_attrs(key_values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in _as_list(key_values, "attributes", SpanProblem):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise SpanProblem(f"attribute {kv!r} has no string key")
        out[kv["key"]] = _json_value(kv.get("value"), kv["key"])
    return out


def _json_id(value: Any, what: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise SpanProblem(f"{what} {value!r} is not a hex string")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise SpanProblem(f"{what} {value!r} is not hex") from None
    return value.lower()


def _json_span(span: Any, ctx: ScopeContext) -> SpanParts:
    if not isinstance(span, dict):
        raise SpanProblem("span is not an object")
    trace_id = _json_id(_get(span, "traceId", "trace_id"), "traceId")
    span_id = _json_id(_get(span, "spanId", "span_id"), "spanId")
    parent = _json_id(_get(span, "parentSpanId", "parent_span_id"), "parentSpanId")
    check_ids(trace_id, span_id, parent)
    name = span.get("name")
    if not isinstance(name, str) or not name:
        raise SpanProblem("span has no name")
    events = []
    for e in _as_list(span.get("events"), "events", SpanProblem):
        e = _as_obj(e, "event", SpanProblem)
        events.append({
            canonical.EVENT_NAME: str(e.get("name") or ""),
            canonical.EVENT_TIME: canonical.iso_from_ns(
                _json_int(_get(e, "timeUnixNano", "time_unix_nano", 0), "event timeUnixNano")),
            canonical.EVENT_ATTRIBUTES: _json_attrs(e.get("attributes")),
        })
    links = []
    for link in _as_list(span.get("links"), "links", SpanProblem):
        link = _as_obj(link, "link", SpanProblem)
        links.append({
            canonical.LINK_TRACE_ID: _json_id(_get(link, "traceId", "trace_id"), "link traceId"),
            canonical.LINK_SPAN_ID: _json_id(_get(link, "spanId", "span_id"), "link spanId"),
            canonical.LINK_TRACE_STATE: str(_get(link, "traceState", "trace_state", "")),
            canonical.LINK_ATTRIBUTES: _json_attrs(link.get("attributes")),
        })
    status = _as_obj(span.get("status"), "status", SpanProblem)
    message = status.get("message") or ""
    head = span_head(
        trace_id, span_id, parent, str(_get(span, "traceState", "trace_state", "")), name,
        enum_name(canonical.SPAN_KINDS, span.get("kind", 0), "kind"),
        _json_int(_get(span, "startTimeUnixNano", "start_time_unix_nano", 0), "startTimeUnixNano"),
        _json_int(_get(span, "endTimeUnixNano", "end_time_unix_nano", 0), "endTimeUnixNano"),
        enum_name(canonical.STATUS_CODES, status.get("code", 0), "status code"),
        message if isinstance(message, str) else str(message),
    )
    dropped = tuple(
        _json_int(_get(span, camel, snake, 0), camel)
        for camel, snake in (("droppedAttributesCount", canonical.DROPPED_ATTRIBUTES),
                             ("droppedEventsCount", canonical.DROPPED_EVENTS),
                             ("droppedLinksCount", canonical.DROPPED_LINKS))
    )
    return SpanParts(head, _json_attrs(span.get("attributes")), events, links,
                     dropped, ctx)  # type: ignore[arg-type]


def json_request(body: bytes, message: str) -> dict[str, Any]:
    """An OTLP/JSON request body as a dict, or `InvalidRequest` naming `message`, the type expected."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidRequest(f"body is not an OTLP/JSON {message} object")
    return request


def from_json(body: bytes, *, project_id: str = "", lineage: AgentLineage | None = None,
              span_events: Any = None) -> Conversion:
    """Decode an OTLP/JSON `ExportTraceServiceRequest` and convert it."""
    request = json_request(body, "ExportTraceServiceRequest")
    out = Conversion()
    batch = SpanBatch(out, lineage, span_events)
    resource_spans = _as_list(_get(request, "resourceSpans", "resource_spans"), "resourceSpans",
                              InvalidRequest)
    for r, rs in enumerate(resource_spans):
        rs = _as_obj(rs, f"resourceSpans[{r}]", InvalidRequest)
        resource = _as_obj(rs.get("resource"), f"resourceSpans[{r}].resource", InvalidRequest)
        try:
            resource_attrs = _json_attrs(resource.get("attributes"))
        except SpanProblem as exc:
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
                    extra[canonical.SCOPE_ATTRIBUTES] = _json_attrs(scope.get("attributes"))
            except SpanProblem as exc:
                raise InvalidRequest(f"{where}.scope: {exc}") from None
            if _get(rs, "schemaUrl", "schema_url"):
                extra[canonical.RESOURCE_SCHEMA_URL] = str(_get(rs, "schemaUrl", "schema_url"))
            if _get(ss, "schemaUrl", "schema_url"):
                extra[canonical.SCOPE_SCHEMA_URL] = str(_get(ss, "schemaUrl", "schema_url"))
            ctx = ScopeContext(project_id, resource_attrs, str(scope.get("name") or ""),
                                str(scope.get("version") or ""), extra)
            for i, span in enumerate(_as_list(ss.get("spans"), f"{where}.spans", InvalidRequest)):
                try:
                    batch.add(_json_span(span, ctx))
                except SpanProblem as exc:
                    out.reject(f"{where}.spans[{i}]", str(exc))
    return batch.finish()
