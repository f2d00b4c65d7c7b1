"""Helpers of the OTLP receiver tests: real OTel SDK spans, hand-built OTLP/JSON, servers in-process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from halo_live.exporter.otlp_logs import logs_path_for
from halo_live.exporter.receiver import Receiver
from halo_live.exporter.receiver_grpc import GrpcReceiver
from halo_live.exporter.receiver_http import HttpReceiver
from halo_live.exporter.writer import JsonlWriter

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "eee19b7ec3c1b173"


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def make_agent_spans(exporter: SpanExporter | None = None, *, resource_attrs: dict | None = None,
                     scope: str = "test-scope") -> list[ReadableSpan]:
    """A small agent run through the real OTel SDK: AGENT -> LLM (+ usage), TOOL failing with an exception.

    Spans are exported one by one to `exporter` (if given); returns them in end order.
    """
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(
        {"service.name": "otlp-agent", **(resource_attrs or {})}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(scope, "9.9.9")
    with tracer.start_as_current_span(
        "invoke_agent planner", kind=SpanKind.SERVER,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                    "session.id": "sess-1"},
    ) as agent:
        with tracer.start_as_current_span(
            "chat gpt-4o", kind=SpanKind.CLIENT,
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                        "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 120,
                        "gen_ai.usage.output_tokens": 7, "temperature": 0.25, "stream": False,
                        "stop": ["\n", "END"], "seeds": [1, 2, 3]},
            links=[Link(agent.get_span_context(), {"why": "caused-by"})],
        ) as llm:
            llm.add_event("first_token", {"latency_ms": 42})
        try:
            with tracer.start_as_current_span(
                "execute_tool search", attributes={"gen_ai.operation.name": "execute_tool",
                                                   "gen_ai.tool.name": "search"},
                record_exception=True, set_status_on_exception=False,
            ) as tool:
                tool.set_status(Status(StatusCode.ERROR))
                raise TimeoutError("search timed out")
        except TimeoutError:
            pass
        agent.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(memory.get_finished_spans())


def json_span(**overrides) -> dict:
    """One OTLP/JSON span with every field set; `overrides` replace or (None) remove fields."""
    span = {
        "traceId": TRACE_ID.upper(),
        "spanId": SPAN_ID,
        "parentSpanId": PARENT_ID,
        "traceState": "vendor=1",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": "1544712660300000000",
        "endTimeUnixNano": "1544712661123456789",
        "attributes": [
            {"key": "s", "value": {"stringValue": "text"}},
            {"key": "i", "value": {"intValue": "9007199254740993"}},
            {"key": "i_num", "value": {"intValue": 5}},
            {"key": "d", "value": {"doubleValue": 0.5}},
            {"key": "d_nan", "value": {"doubleValue": "NaN"}},
            {"key": "b", "value": {"boolValue": True}},
            {"key": "arr", "value": {"arrayValue": {"values": [
                {"stringValue": "a"}, {"intValue": "2"}, {"boolValue": False}]}}},
            {"key": "kv", "value": {"kvlistValue": {"values": [
                {"key": "inner", "value": {"doubleValue": 1.5}},
                {"key": "deep", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}}]}}},
            {"key": "bytes", "value": {"bytesValue": "AAEC"}},
            {"key": "empty", "value": {}},
            {"key": "llm.model_name", "value": {"stringValue": "gpt-x"}},
            {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
            {"key": "llm.token_count.prompt", "value": {"intValue": "11"}},
        ],
        "droppedAttributesCount": 2,
        "events": [{"timeUnixNano": "1544712660500000000", "name": "exception",
                    "attributes": [{"key": "exception.type", "value": {"stringValue": "KeyError"}},
                                   {"key": "exception.message", "value": {"stringValue": "'x'"}}]}],
        "droppedEventsCount": 1,
        "links": [{"traceId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "spanId": "bbbbbbbbbbbbbbbb",
                   "traceState": "", "attributes": [{"key": "l", "value": {"intValue": "1"}}]}],
        "status": {"code": 2},
    }
    for key, value in overrides.items():
        if value is None:
            span.pop(key, None)
        else:
            span[key] = value
    return span


def json_request(spans: Sequence[dict], *, resource: list | None = None,
                 scope: dict | None = None) -> bytes:
    resource = resource if resource is not None else [
        {"key": "service.name", "value": {"stringValue": "json-svc"}}]
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": resource},
        "scopeSpans": [{"scope": scope or {"name": "json-scope", "version": "1.0"},
                        "spans": list(spans)}],
    }]})


class Servers:
    """A writer, a receiver and both OTLP servers on port 0, in-process."""

    def __init__(self, path: Path, *, token: str | None = None, project_id: str = "proj-default",
                 max_body_bytes: int = 4 * 1024 * 1024, writer: JsonlWriter | None = None,
                 **receiver_kwargs) -> None:
        self.path = path
        self.writer = writer or JsonlWriter(path, fsync="never", flush_interval=0.05)
        receiver_kwargs.setdefault("logs_path", logs_path_for(path))
        self.receiver = Receiver(self.writer, project_id=project_id, token=token,
                                 max_body_bytes=max_body_bytes, **receiver_kwargs)
        self.grpc = GrpcReceiver(self.receiver, "127.0.0.1", 0)
        self.http = HttpReceiver(self.receiver, "127.0.0.1", 0)
        self.grpc_port = self.grpc.start()
        self.http_port = self.http.start()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    @property
    def logs_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/logs"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def close(self) -> None:
        self.grpc.stop(1.0)
        self.http.stop(1.0)
        self.receiver.close()  # writes what the lineage held
        self.writer.shutdown(5.0)


@contextlib.contextmanager
def servers(path: Path, **kwargs) -> Iterator[Servers]:
    s = Servers(path, **kwargs)
    try:
        yield s
    finally:
        s.close()
