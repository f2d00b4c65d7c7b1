"""Canonical HALO lines -> an OTLP/JSON trace request, and sending it over OTLP/HTTP.

The reverse of `receiver_json`: spans grouped by resource and scope, ids as
hex, enums and 64-bit integers as the protobuf JSON mapping spells them. It
lets a process that records canonical lines (`--telemetry`) also deliver them
to any OTLP endpoint: `halo serve`, a Collector, Phoenix.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from halo_live.exporter import canonical

TRACES_PATH = "/v1/traces"


def any_value(value: Any) -> dict[str, Any]:
    """One attribute value as an OTLP `AnyValue`."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": key_values(value)}}
    return {"stringValue": "" if value is None else str(value)}


def key_values(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": str(k), "value": any_value(v)} for k, v in attrs.items() if v is not None]


_HEX = {16: re.compile(r"[0-9a-f]{16}"), 32: re.compile(r"[0-9a-f]{32}")}


def otlp_id(value: str, width: int) -> str:
    """`value` as an OTLP id of `width` hex digits: kept when it is one, else a stable hash
    (the Agents SDK's span ids are 12 bytes; OTLP's are 8)."""
    value = str(value).lower()
    if _HEX[width].fullmatch(value) and value.strip("0"):
        return value
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=width // 2).hexdigest()
    return digest if digest.strip("0") else "1".rjust(width, "0")


def _span(line: Mapping[str, Any]) -> dict[str, Any]:
    status = line.get(canonical.STATUS) or {}
    code = status.get(canonical.STATUS_CODE_FIELD, canonical.STATUS_UNSET)
    kind = line.get(canonical.KIND, canonical.SPAN_KIND_INTERNAL)
    span = {
        "traceId": otlp_id(line[canonical.TRACE_ID], 32), "spanId": otlp_id(line[canonical.SPAN_ID], 16),
        "name": line.get(canonical.NAME, ""),
        "kind": canonical.SPAN_KINDS.index(kind) if kind in canonical.SPAN_KINDS else 0,
        "startTimeUnixNano": str(canonical.ns_from_iso(line.get(canonical.START_TIME, "")) or 0),
        "endTimeUnixNano": str(canonical.ns_from_iso(line.get(canonical.END_TIME, "")) or 0),
        "attributes": key_values(line.get(canonical.ATTRIBUTES) or {}),
        "status": {"code": canonical.STATUS_CODES.index(code) if code in canonical.STATUS_CODES else 0,
                   "message": status.get(canonical.STATUS_MESSAGE_FIELD, "")},
    }
    if line.get(canonical.PARENT_SPAN_ID):
        span["parentSpanId"] = otlp_id(line[canonical.PARENT_SPAN_ID], 16)
    if line.get(canonical.TRACE_STATE):
        span["traceState"] = line[canonical.TRACE_STATE]
    return span


def export_request(lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """An `ExportTraceServiceRequest` (OTLP/JSON) holding `lines`, grouped by resource and scope."""
    groups: dict[str, dict[str, Any]] = {}
    for line in lines:
        resource = (line.get(canonical.RESOURCE) or {}).get("attributes") or {}
        scope = line.get(canonical.SCOPE) or {}
        rkey = json.dumps(resource, sort_keys=True, default=str)
        entry = groups.setdefault(rkey, {"resource": {"attributes": key_values(resource)}, "scopes": {}})
        skey = json.dumps(scope, sort_keys=True, default=str)
        scoped = entry["scopes"].setdefault(skey, {
            "scope": {"name": scope.get(canonical.SCOPE_NAME_FIELD, ""),
                      "version": scope.get(canonical.SCOPE_VERSION_FIELD, "")},
            "spans": []})
        scoped["spans"].append(_span(line))
    return {"resourceSpans": [{"resource": g["resource"], "scopeSpans": list(g["scopes"].values())}
                              for g in groups.values()]}


def traces_url(endpoint: str) -> str:
    """`http://host:4318` -> `http://host:4318/v1/traces` (a URL ending in /v1/traces is kept)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


def send(endpoint: str, lines: list[Mapping[str, Any]], *, timeout: float = 10.0,
         headers: Mapping[str, str] | None = None) -> None:
    """POST `lines` as one OTLP/JSON request; raises OSError with the reason when not accepted."""
    body = json.dumps(export_request(lines), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(traces_url(endpoint), data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = response.read()
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code}: {exc.read()[:200].decode('utf-8', 'replace')}") from exc
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from exc
    try:
        rejected = (json.loads(answer or b"{}").get("partialSuccess") or {}).get("rejectedSpans")
    except (ValueError, AttributeError):  # a protobuf or empty body: accepted
        rejected = None
    if rejected and str(rejected) != "0":
        raise OSError(f"the endpoint rejected {rejected} of {len(lines)} spans")
