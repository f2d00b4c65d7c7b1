"""The projection of real OTel SDK spans, through HaloSpanExporter and through halo serve alike.

Each behaviour runs on both paths: the exporter (a SimpleSpanProcessor, one span
per export) and the receiver (the official OTLP/HTTP exporter, one span per
request), so the line's facts do not depend on how the producer batches.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from halo_live.exporter import HaloSpanExporter, canonical
from halo_live.exporter.projection import error_text
from tests._otlp_helpers import read_lines, servers

PATHS = ("exporter", "receiver")


@pytest.fixture
def traced(tmp_path, request):
    """A tracer whose spans reach a trace file one span per export, by `request.param`'s path."""
    made = []

    def make(path_kind: str):
        out = tmp_path / f"{path_kind}.jsonl"
        provider = TracerProvider(resource=Resource.create({"service.name": "proj-test"}))
        if path_kind == "exporter":
            provider.add_span_processor(SimpleSpanProcessor(HaloSpanExporter(out, project_id="p")))
            made.append((provider, None))
        else:
            ctx = servers(out, agent_wait=30.0)
            s = ctx.__enter__()
            provider.add_span_processor(SimpleSpanProcessor(HttpExporter(endpoint=s.http_url, timeout=10)))
            made.append((provider, ctx))
        tracer = provider.get_tracer("genai-lib", "1.0")

        def finish() -> dict[str, dict]:
            provider.shutdown()
            if made[-1][1] is not None:
                made[-1][1].__exit__(None, None, None)
            return {line[canonical.NAME]: line for line in read_lines(out)}
        return tracer, finish

    yield make


def _attrs(lines: dict[str, dict], name: str) -> dict:
    return lines[name][canonical.ATTRIBUTES]


@pytest.mark.parametrize("path_kind", PATHS)
def test_genai_tool_span_gets_tool_name_arguments_and_result(traced, path_kind):
    tracer, finish = traced(path_kind)
    with tracer.start_as_current_span("execute_tool lookup", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.arguments": '{"key": "a"}', "gen_ai.tool.call.result": "value of a"}):
        pass
    with tracer.start_as_current_span("execute_tool own", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "own",
            "tool.name": "kept", "input.value": "sender's", "gen_ai.tool.call.arguments": "{}"}):
        pass
    lines = finish()
    tool = _attrs(lines, "execute_tool lookup")
    assert (tool["tool.name"], tool["input.value"], tool["output.value"]) == ("lookup", '{"key": "a"}', "value of a")
    assert tool[canonical.INF_OBSERVATION_KIND] == canonical.OBS_TOOL
    own = _attrs(lines, "execute_tool own")
    assert (own["tool.name"], own["input.value"]) == ("kept", "sender's")  # the sender's values win


@pytest.mark.parametrize("path_kind", PATHS)
def test_genai_messages_become_input_and_output_values(traced, path_kind):
    tracer, finish = traced(path_kind)
    messages_in = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    messages_out = [{"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}]
    with tracer.start_as_current_span("chat m", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
            "gen_ai.input.messages": json.dumps(messages_in),
            "gen_ai.output.messages": json.dumps(messages_out)}):
        pass
    attrs = _attrs(finish(), "chat m")
    assert json.loads(attrs["input.value"]) == messages_in
    assert json.loads(attrs["output.value"]) == messages_out


@pytest.mark.parametrize("path_kind", PATHS)
def test_agent_name_reaches_spans_exported_before_their_agent(traced, path_kind):
    tracer, finish = traced(path_kind)
    with tracer.start_as_current_span("invoke_agent planner", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}):
        with tracer.start_as_current_span("turn"):  # an unnamed span between them
            with tracer.start_as_current_span("chat m", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}):
                pass
            with tracer.start_as_current_span("execute_tool t", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "t"}):
                pass
    with tracer.start_as_current_span("outside"):
        with tracer.start_as_current_span("chat alone", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}):
            pass
    lines = finish()
    assert len(lines) == 6  # nothing held back for good
    assert _attrs(lines, "chat m")[canonical.INF_AGENT_NAME] == "planner"
    assert _attrs(lines, "execute_tool t")[canonical.INF_AGENT_NAME] == "planner"
    assert canonical.INF_AGENT_NAME not in _attrs(lines, "turn")
    assert canonical.INF_AGENT_NAME not in _attrs(lines, "chat alone")  # no agent above it


@pytest.mark.parametrize("path_kind", PATHS)
def test_provider_only_where_a_model_call_is_known(traced, path_kind):
    tracer, finish = traced(path_kind)
    blanket = {"gen_ai.system": "openai"}  # Logfire and OpenLLMetry put it on every span
    with tracer.start_as_current_span("agent run", attributes={**blanket, "gen_ai.agent.name": "a",
                                                               "gen_ai.operation.name": "invoke_agent"}):
        with tracer.start_as_current_span("Function: x", attributes={**blanket, "gen_ai.tool.name": "x"}):
            pass
        with tracer.start_as_current_span("Chat completion", attributes={
                **blanket, "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3,
                "gen_ai.usage.output_tokens": 1}):
            pass
    lines = finish()
    llm = _attrs(lines, "Chat completion")
    assert llm[canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM  # model + usage, no operation
    assert llm[canonical.INF_LLM_PROVIDER] == "openai"
    assert canonical.INF_LLM_PROVIDER not in _attrs(lines, "agent run")
    assert canonical.INF_LLM_PROVIDER not in _attrs(lines, "Function: x")


@pytest.mark.parametrize("path_kind", PATHS)
def test_status_messages_read_like_sentences(traced, path_kind):
    tracer, finish = traced(path_kind)
    sdk_error = {"message": "Error running tool (non-fatal)", "data": {"tool_name": "t", "error": "boom"}}
    with tracer.start_as_current_span("openllmetry") as span:  # a dict repr as the message
        span.set_status(Status(StatusCode.ERROR, repr(sdk_error)))
    with tracer.start_as_current_span("openinference") as span:  # "text: {dict repr}"
        span.set_status(Status(StatusCode.ERROR, f"{sdk_error['message']}: {sdk_error['data']!r}"))
    with tracer.start_as_current_span("logfire", attributes={
            "logfire.span_type": "span", "error": json.dumps(sdk_error)}) as span:  # empty message
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("plain") as span:
        span.set_status(Status(StatusCode.ERROR, "bad config: {a: 1}"))
    lines = finish()
    for name in ("openllmetry", "openinference", "logfire"):
        assert lines[name][canonical.STATUS]["message"] == "Error running tool (non-fatal)", name
        assert json.loads(_attrs(lines, name)[canonical.SDK_ERROR_DATA]) == sdk_error["data"], name
    assert lines["plain"][canonical.STATUS]["message"] == "bad config: {a: 1}"


def test_error_text_prefers_the_exception_event_for_an_empty_message():
    events = [{"name": "exception", "attributes": {"exception.type": "ValueError", "exception.message": "x"}}]
    assert error_text("", events, {"error": '{"message": "other"}'}) == ("ValueError: x", {})
    assert error_text("", [], {}) == ("", {})


@pytest.mark.parametrize("attrs, message", [
    ({"logfire.span_type": "span", "name": 5, "input": {"a": [1]}, "mcp_data": None, "logfire.tags": "LLM"}, ""),
    ({"logfire.span_type": "span", "error": "not json {"}, ""),
    ({"traceloop.span.kind": ["tool"], "traceloop.entity.name": 3, "gen_ai.tool.call.arguments": [1, 2]}, "{"),
    ({"openinference.span.kind": "TOOL", "gen_ai.input.messages": ""}, "[Errno 2] No such file"),
    ({}, "x: {" + "'error': 1, " * 20_000 + "}"),  # too long to parse: kept as sent
    ({}, "{'message': 'deep', 'data': " + "[" * 500 + "]" * 500 + "}"),
])
def test_odd_attributes_and_messages_never_raise(attrs, message):
    from halo_live.exporter.projection import project_span

    projected = project_span(attrs, name="handoff to x", project_id="p")
    assert projected[canonical.INF_OBSERVATION_KIND] in canonical.OBSERVATION_KINDS
    text, extra = error_text(message, None, attrs)
    assert isinstance(text, str) and set(extra) <= {canonical.SDK_ERROR_DATA}
