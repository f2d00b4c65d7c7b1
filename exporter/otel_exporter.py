"""`HaloSpanExporter`: an OpenTelemetry SDK `SpanExporter` writing canonical HALO lines.

    provider = TracerProvider(resource=Resource.create({"service.name": "app"}))
    provider.add_span_processor(BatchSpanProcessor(HaloSpanExporter("traces.jsonl", project_id="p")))

Any OTel-instrumented app (OpenInference or GenAI-semconv instrumentations)
then writes the same lines as the Agents SDK processor and the OTLP receiver:
attribute values keep their JSON types, resource and scope are kept, events,
links and dropped counts go at the top level (the reference forbids extra
keys inside status/resource/scope), and `halo_live.exporter.projection.project_span` adds
the `inference.*` projection. An LLM or TOOL span exported before its agent's span
is held (at most `agent_wait` seconds) until that agent is known
(`halo_live.exporter.lineage`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from halo_live.exporter import config
from halo_live.exporter import canonical
from halo_live.exporter import projection
from halo_live.exporter.lineage import HINTED_KINDS, AgentLineage
from halo_live.exporter.writer import JsonlWriter

logger = logging.getLogger(__name__)


def otel_value_to_json(value: Any) -> Any:
    """An OTel attribute value as JSON: scalars unchanged, sequences as arrays."""
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN/inf
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, Sequence):
        return [otel_value_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): otel_value_to_json(v) for k, v in value.items()}
    return str(value)


def otel_attrs_to_json(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """OTel attributes (a BoundedAttributes or any mapping) as a JSON-typed dict."""
    if not attrs:
        return {}
    return {str(k): otel_value_to_json(v) for k, v in attrs.items()}


def _with_agent(line: dict[str, Any], agent: str | None) -> bytes:
    if agent:
        line[canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] = agent
    return canonical.encode_line(line)


def readable_span_to_line(span: ReadableSpan, *, project_id: str = "") -> dict[str, Any]:
    """One OTel SDK `ReadableSpan` as a canonical line dict."""
    ctx = span.context
    resource = span.resource
    resource_attrs = otel_attrs_to_json(resource.attributes if resource is not None else None)
    scope = span.instrumentation_scope
    attrs = otel_attrs_to_json(span.attributes)
    events = [
        {canonical.EVENT_NAME: e.name, canonical.EVENT_TIME: canonical.iso_from_ns(e.timestamp or 0),
         canonical.EVENT_ATTRIBUTES: otel_attrs_to_json(e.attributes)}
        for e in span.events
    ]
    links = [
        {canonical.LINK_TRACE_ID: canonical.hex_id(link.context.trace_id, 32),
         canonical.LINK_SPAN_ID: canonical.hex_id(link.context.span_id, 16),
         canonical.LINK_TRACE_STATE: link.context.trace_state.to_header() if link.context.trace_state else "",
         canonical.LINK_ATTRIBUTES: otel_attrs_to_json(link.attributes)}
        for link in span.links
    ]
    status = span.status
    code = canonical.STATUS_CODES[status.status_code.value] if status is not None else canonical.STATUS_UNSET
    message = (status.description if status is not None else None) or ""
    if code == canonical.STATUS_ERROR:
        message, error_attrs = projection.error_text(message, events, attrs)
        attrs.update(error_attrs)

    extra: dict[str, Any] = {}
    if events:
        extra[canonical.EVENTS] = events
    if links:
        extra[canonical.LINKS] = links
    for key, count in ((canonical.DROPPED_ATTRIBUTES, span.dropped_attributes),
                       (canonical.DROPPED_EVENTS, span.dropped_events), (canonical.DROPPED_LINKS, span.dropped_links)):
        if count:
            extra[key] = count
    if scope is not None and getattr(scope, "attributes", None):
        extra[canonical.SCOPE_ATTRIBUTES] = otel_attrs_to_json(scope.attributes)
    if resource is not None and resource.schema_url:
        extra[canonical.RESOURCE_SCHEMA_URL] = resource.schema_url
    if scope is not None and scope.schema_url:
        extra[canonical.SCOPE_SCHEMA_URL] = scope.schema_url

    attrs.update(projection.project_span(attrs, name=span.name, project_id=project_id,
                                         resource_attrs=resource_attrs, events=events))
    parent = span.parent
    return canonical.canonical_line(
        trace_id=canonical.hex_id(ctx.trace_id, 32),
        span_id=canonical.hex_id(ctx.span_id, 16),
        parent_span_id=canonical.hex_id(parent.span_id, 16) if parent is not None else "",
        trace_state=ctx.trace_state.to_header() if ctx.trace_state else "",
        name=span.name,
        kind="SPAN_KIND_" + span.kind.name,  # the SDK's enum numbers differ from OTLP's
        start_time=canonical.iso_from_ns(span.start_time or 0),
        end_time=canonical.iso_from_ns(span.end_time or span.start_time or 0),
        status_code=code,
        status_message=message,
        resource_attributes=resource_attrs,
        scope_name=scope.name if scope is not None else "",
        scope_version=(scope.version or "") if scope is not None else "",
        attributes=attrs,
        extra=extra,
    )


class HaloSpanExporter(SpanExporter):
    """An OTel `SpanExporter` appending canonical lines to `path` through a `JsonlWriter`.

    `export()` converts on the calling (batch processor) thread, enqueues, and
    by default returns SUCCESS only once the lines are written (and synced,
    per `fsync`): `BatchSpanProcessor.force_flush()` does not call the
    exporter's, so this is what makes a provider flush reach the disk.
    `wait_for_write=False` returns at once (the writer flushes on its
    interval). `agent_wait`: how long an LLM/TOOL span may wait for its
    agent's span to name it (0: never held); held lines are written on
    `force_flush()` and `shutdown()` too. Options: `writer` (share one),
    `fsync`, `max_queue_lines`, `flush_interval`, `block_timeout`, `on_flush`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        project_id: str | None = None,
        wait_for_write: bool = True,
        agent_wait: float = config.DEFAULT_AGENT_WAIT,
        writer: JsonlWriter | None = None,
        **writer_options: Any,
    ) -> None:
        self.project_id = str(config.setting(project_id, config.HALO_PROJECT_ID,
                                             config.DEFAULT_PROJECT_ID))
        self.wait_for_write = wait_for_write
        self._owns_writer = writer is None
        self.writer = writer if writer is not None else JsonlWriter(path, **writer_options)
        self.lineage = AgentLineage(self.writer.submit, wait=agent_wait)
        self._shutdown = False
        self._warned = False

    def _encode(self, dicts: list[dict[str, Any]]) -> list[bytes]:
        """Encoded lines of `dicts`, LLM/TOOL spans named after their agent (or held for it)."""
        ids = []
        for line in dicts:
            ids.append((line[canonical.TRACE_ID], line[canonical.SPAN_ID]))
            self.lineage.add(ids[-1][0], ids[-1][1], line[canonical.PARENT_SPAN_ID],
                             canonical.agent_name(line[canonical.ATTRIBUTES]))
        lines: list[bytes] = []
        for line, (trace_id, span_id) in zip(dicts, ids):
            attrs = line[canonical.ATTRIBUTES]
            if (attrs[canonical.INF_OBSERVATION_KIND] in HINTED_KINDS
                    and not attrs.get(canonical.INF_AGENT_NAME)):
                encoded = self.lineage.place(trace_id, span_id, functools.partial(_with_agent, line))
                if encoded is not None:
                    lines.append(encoded)
            else:
                lines.append(canonical.encode_line(line))
        lines.extend(self.lineage.settle({trace_id for trace_id, _ in ids}))
        return lines

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            lines = self._encode([readable_span_to_line(s, project_id=self.project_id) for s in spans])
            if not lines:
                return SpanExportResult.SUCCESS
            ticket = self.writer.submit(lines)
            if ticket is None:
                return SpanExportResult.FAILURE
            if self.wait_for_write and not self.writer.wait(ticket):
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS
        except Exception as exc:  # exporters report failure, they don't raise
            if not self._warned:
                self._warned = True
                logger.warning("[non-fatal] halo: cannot export spans: %r", exc)
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.lineage.flush()
        return self.writer.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self.lineage.close()
        if self._owns_writer:
            self.writer.shutdown(timeout=30.0)
        else:
            self.writer.flush(30.0)

    @property
    def dropped(self) -> int:
        """Span lines lost (queue full or write failure)."""
        return self.writer.dropped
