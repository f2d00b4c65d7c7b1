"""The benchmark's other transport: Agents SDK spans as OTel GenAI spans over OTLP to `halo serve`.

This is how an agent that is not traced by `setup_tracing()` reaches halo: any
OpenTelemetry SDK with the GenAI semantic conventions and an OTLP exporter.
`OtelBridge` is an Agents SDK `TracingProcessor` that re-emits each SDK span
as an OTel span (`invoke_agent`, `chat`, `execute_tool`, ...), under one root
span per SDK trace; `start_otlp()` installs it with an OTLP/HTTP exporter.
A task's outcome (`record_outcome`'s span) becomes what an OTel app sends: a
`gen_ai.evaluation.result` event on the trace's root span.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from agents.tracing import Span, Trace, TracingProcessor, set_trace_processors
from agents.tracing.span_data import (
    AgentSpanData,
    CustomSpanData,
    FunctionSpanData,
    GenerationSpanData,
    HandoffSpanData,
    ResponseSpanData,
)
from opentelemetry import trace as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from halo_live.exporter import canonical


def _ns(iso: str | None) -> int:
    if not iso:
        return time.time_ns()
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000_000)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


class OtelBridge(TracingProcessor):
    """Re-emits Agents SDK spans as OTel GenAI spans on `tracer_provider`."""

    def __init__(self, tracer_provider: TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer("halo-demo.otel-bridge")
        self._roots: dict[str, Any] = {}
        self._spans: dict[str, Any] = {}
        self._agent_of: dict[str, str | None] = {}
        self.otel_trace_ids: dict[str, str] = {}  # SDK trace id -> OTel trace id (32 hex)

    def on_trace_start(self, trace: Trace) -> None:
        attrs = {canonical.GENAI_OPERATION: "invoke_workflow"}
        if trace.group_id:
            attrs[canonical.GENAI_CONVERSATION_ID] = trace.group_id
        root = self._tracer.start_span(trace.name, attributes=attrs)
        self._roots[trace.trace_id] = root
        self.otel_trace_ids[trace.trace_id] = format(root.get_span_context().trace_id, "032x")

    def on_trace_end(self, trace: Trace) -> None:
        root = self._roots.pop(trace.trace_id, None)
        if root is not None:
            root.end()

    def on_span_start(self, span: Span[Any]) -> None:
        if _is_outcome(span.span_data):
            return  # an event, at its end
        parent = self._spans.get(span.parent_id) if span.parent_id else None
        parent = parent or self._roots.get(span.trace_id)
        context = otel.set_span_in_context(parent) if parent is not None else None
        data = span.span_data
        agent = data.name if isinstance(data, AgentSpanData) else self._agent_of.get(span.parent_id or "")
        self._agent_of[span.span_id] = agent
        self._spans[span.span_id] = self._tracer.start_span(
            data.type, context=context, start_time=_ns(span.started_at))

    def on_span_end(self, span: Span[Any]) -> None:
        if _is_outcome(span.span_data):
            root = self._roots.get(span.trace_id)
            if root is not None:
                attrs = {k: v for k, v in (span.span_data.data or {}).items() if v is not None}
                root.add_event(canonical.EVALUATION_RESULT, attributes=attrs, timestamp=_ns(span.ended_at))
            return
        otel_span = self._spans.pop(span.span_id, None)
        agent = self._agent_of.pop(span.span_id, None)
        if otel_span is None:
            return
        name, attrs = _describe(span.span_data)
        if agent:
            attrs[canonical.GENAI_AGENT_NAME] = agent
        otel_span.update_name(name)
        otel_span.set_attributes({k: v for k, v in attrs.items() if v is not None})
        if span.error:
            otel_span.set_status(otel.Status(otel.StatusCode.ERROR, span.error.get("message", "")))
            if span.error.get("data"):
                otel_span.set_attribute("error.data", _text(span.error["data"]))
        otel_span.end(end_time=_ns(span.ended_at))

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def _is_outcome(data: Any) -> bool:
    return isinstance(data, CustomSpanData) and data.name == canonical.EVALUATION_RESULT


def _describe(data: Any) -> tuple[str, dict[str, Any]]:
    """(span name, GenAI attributes) for one SDK span's data."""
    if isinstance(data, AgentSpanData):
        return f"invoke_agent {data.name}", {canonical.GENAI_OPERATION: "invoke_agent"}
    if isinstance(data, FunctionSpanData):
        return f"execute_tool {data.name}", {canonical.GENAI_OPERATION: "execute_tool", canonical.GENAI_TOOL_NAME: data.name,
                                             canonical.OI_INPUT_VALUE: data.input, canonical.OI_OUTPUT_VALUE: _text(data.output)}
    if isinstance(data, ResponseSpanData):
        response = data.response
        usage = getattr(response, "usage", None)
        model = getattr(response, "model", None)
        return f"chat {model}", {
            canonical.GENAI_OPERATION: "chat", canonical.GENAI_PROVIDER: "openai", canonical.GENAI_RESPONSE_MODEL: model,
            canonical.GENAI_INPUT_TOKENS: getattr(usage, "input_tokens", None),
            canonical.GENAI_OUTPUT_TOKENS: getattr(usage, "output_tokens", None)}
    if isinstance(data, GenerationSpanData):
        usage = data.usage or {}
        return f"chat {data.model}", {
            canonical.GENAI_OPERATION: "chat", canonical.GENAI_PROVIDER: "openai", canonical.GENAI_REQUEST_MODEL: data.model,
            canonical.GENAI_INPUT_TOKENS: usage.get("input_tokens"), canonical.GENAI_OUTPUT_TOKENS: usage.get("output_tokens")}
    if isinstance(data, HandoffSpanData):
        return f"handoff {data.from_agent} -> {data.to_agent}", {}
    return data.type, {}


def start_otlp(endpoint: str, service_name: str, run_id: str,
               project_id: str = "") -> tuple[OtelBridge, TracerProvider]:
    """Route this process's SDK traces to `endpoint` (OTLP/HTTP `.../v1/traces`) instead of a file."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({canonical.SERVICE_NAME: service_name, canonical.INF_RUN_ID: run_id, canonical.INF_PROJECT_ID: project_id})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=200))
    bridge = OtelBridge(provider)
    set_trace_processors([bridge])
    return bridge, provider
