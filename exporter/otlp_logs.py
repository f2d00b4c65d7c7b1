"""OTLP log requests: every record kept beside the traces, GenAI events folded into their spans.

The GenAI conventions can send content as log events instead of span attributes
(`gen_ai.client.inference.operation.details` with the input / output messages,
`gen_ai.evaluation.result`, the older per-message events). `halo serve` accepts
`/v1/logs` (HTTP, protobuf or JSON) and the gRPC LogsService:

- every log record is appended, as one JSON object a line, to a logs file beside
  the trace file (`*.logs.ndjson`: not `.jsonl`, so neither halo nor halo-engine
  reads it as spans); nothing received is lost;
- a GenAI event that names a span (`span_id`) which has not arrived yet is kept
  (bounded memory) and folded into that span when it does: the event goes to the
  span's `events`, and an operation-details event's `gen_ai.*` attributes fill the
  span's absent ones, so its messages become `input.value` / `output.value`.
  An event whose span was already written stays in the logs file only.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from halo_live.exporter import canonical
from halo_live.exporter.otlp_convert import InvalidRequest, SpanProblem, _pb_attrs, _pb_value
from halo_live.exporter.receiver_json import (
    _as_list, _as_obj, _get, _json_attrs, _json_id, _json_int, _json_value, json_request,
)

OPERATION_DETAILS = "gen_ai.client.inference.operation.details"
GENAI_EVENT_PREFIX = "gen_ai."
EVENT_NAME_ATTR = "event.name"  # the older spelling of a log record's event name
DEFAULT_MAX_SPANS = 10_000  # spans with events waiting for them
_MAX_MESSAGES = 3


def logs_path_for(trace_path: str | os.PathLike[str]) -> Path:
    """The logs file beside a trace file: `traces.jsonl` -> `traces.logs.ndjson`."""
    path = Path(trace_path)
    stem = path.name[:-len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + ".logs.ndjson")


@dataclass
class LogsConversion:
    """Log lines to append, GenAI events by span, and what was rejected."""

    lines: list[bytes] = field(default_factory=list)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # trace, span, event
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        return f"{self.rejected} log record(s) rejected: " + "; ".join(self.problems[:_MAX_MESSAGES])

    def add(self, resource: dict[str, Any], scope: tuple[str, str], record: dict[str, Any]) -> None:
        """One decoded record: its log line, and its span event when it is a GenAI event."""
        line = {"log_record": record, "resource": {canonical.ATTRIBUTES: resource},
                "scope": {canonical.SCOPE_NAME_FIELD: scope[0], canonical.SCOPE_VERSION_FIELD: scope[1]}}
        self.lines.append(canonical.encode_line(line))
        name = record["event_name"] or record["attributes"].get(EVENT_NAME_ATTR) or ""
        if isinstance(name, str) and name.startswith(GENAI_EVENT_PREFIX) and record["span_id"]:
            attrs = dict(record["attributes"])
            if record["body"] is not None:
                attrs.setdefault("body", record["body"])
            event = {canonical.EVENT_NAME: name, canonical.EVENT_TIME: record["time"],
                     canonical.EVENT_ATTRIBUTES: attrs}
            self.events.append((record["trace_id"], record["span_id"], event))

    def reject(self, where: str, problem: str) -> None:
        self.rejected += 1
        if len(self.problems) < _MAX_MESSAGES:
            self.problems.append(f"{where}: {problem}")


def _record(time_ns: int, observed_ns: int, severity_number: int, severity_text: str, body: Any,
            attributes: dict[str, Any], trace_id: str, span_id: str, event_name: str) -> dict[str, Any]:
    if span_id and len(span_id) != 16 or trace_id and len(trace_id) != 32:
        raise SpanProblem(f"trace_id {trace_id!r} / span_id {span_id!r} are not 16 / 8 bytes")
    return {"time": canonical.iso_from_ns(time_ns or observed_ns),
            "observed_time": canonical.iso_from_ns(observed_ns) if observed_ns else "",
            "severity_number": severity_number, "severity_text": severity_text,
            "event_name": event_name, "trace_id": trace_id, "span_id": span_id,
            "body": body, "attributes": attributes}


def from_protobuf(body: bytes) -> LogsConversion:
    """Decode a serialized `ExportLogsServiceRequest`."""
    try:
        request = ExportLogsServiceRequest.FromString(body)
    except (DecodeError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"body is not an OTLP ExportLogsServiceRequest protobuf: {exc}") from None
    out = LogsConversion()
    for r, rl in enumerate(request.resource_logs):
        resource = _pb_attrs(rl.resource.attributes)
        for s, sl in enumerate(rl.scope_logs):
            scope = (sl.scope.name, sl.scope.version)
            for i, lr in enumerate(sl.log_records):
                try:
                    out.add(resource, scope, _record(
                        lr.time_unix_nano, lr.observed_time_unix_nano, lr.severity_number,
                        lr.severity_text, _pb_value(lr.body) if lr.HasField("body") else None,
                        _pb_attrs(lr.attributes), lr.trace_id.hex(), lr.span_id.hex(), lr.event_name))
                except SpanProblem as exc:
                    out.reject(f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]", str(exc))
    return out


def from_json(body: bytes) -> LogsConversion:
    """Decode an OTLP/JSON `ExportLogsServiceRequest`."""
    request = json_request(body, "ExportLogsServiceRequest")
    out = LogsConversion()
    for r, rl in enumerate(_as_list(_get(request, "resourceLogs", "resource_logs"), "resourceLogs",
                                    InvalidRequest)):
        rl = _as_obj(rl, f"resourceLogs[{r}]", InvalidRequest)
        try:
            resource = _json_attrs(_as_obj(rl.get("resource"), "resource", InvalidRequest).get("attributes"))
        except SpanProblem as exc:
            raise InvalidRequest(f"resourceLogs[{r}].resource: {exc}") from None
        for s, sl in enumerate(_as_list(_get(rl, "scopeLogs", "scope_logs"), "scopeLogs", InvalidRequest)):
            sl = _as_obj(sl, f"resourceLogs[{r}].scopeLogs[{s}]", InvalidRequest)
            scope_obj = _as_obj(sl.get("scope"), "scope", InvalidRequest)
            scope = (str(scope_obj.get("name") or ""), str(scope_obj.get("version") or ""))
            for i, lr in enumerate(_as_list(_get(sl, "logRecords", "log_records"), "logRecords",
                                            InvalidRequest)):
                try:
                    lr = _as_obj(lr, "logRecord", SpanProblem)
                    severity = _json_int(_get(lr, "severityNumber", "severity_number", 0), "severityNumber")
                    out.add(resource, scope, _record(
                        _json_int(_get(lr, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano"),
                        _json_int(_get(lr, "observedTimeUnixNano", "observed_time_unix_nano", 0),
                                  "observedTimeUnixNano"),
                        severity, str(_get(lr, "severityText", "severity_text", "")),
                        _json_value(lr.get("body"), "body"), _json_attrs(lr.get("attributes")),
                        _json_id(_get(lr, "traceId", "trace_id"), "traceId"),
                        _json_id(_get(lr, "spanId", "span_id"), "spanId"),
                        str(_get(lr, "eventName", "event_name", ""))))
                except SpanProblem as exc:
                    out.reject(f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]", str(exc))
    return out


class SpanEvents:
    """GenAI events waiting for their span (bounded: the oldest spans' are dropped first,
    but they stay in the logs file)."""

    def __init__(self, max_spans: int = DEFAULT_MAX_SPANS) -> None:
        self.max_spans = max_spans
        self._waiting: OrderedDict[tuple[str, str], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, events: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        with self._lock:
            for trace_id, span_id, event in events:
                self._waiting.setdefault((trace_id, span_id), []).append(event)
            while len(self._waiting) > self.max_spans:
                self._waiting.popitem(last=False)

    def fold(self, trace_id: str, span_id: str, attributes: dict[str, Any],
             events: list[dict[str, Any]]) -> None:
        """Fold the events waiting for this span into its `attributes` and `events`."""
        if not self._waiting:
            return
        with self._lock:
            waiting = self._waiting.pop((trace_id, span_id), None)
        for event in waiting or ():
            events.append(event)
            if event[canonical.EVENT_NAME] == OPERATION_DETAILS:
                for key, value in event[canonical.EVENT_ATTRIBUTES].items():
                    if key.startswith(GENAI_EVENT_PREFIX) and attributes.get(key) in (None, ""):
                        attributes[key] = value
