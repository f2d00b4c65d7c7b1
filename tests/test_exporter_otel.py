"""HaloSpanExporter under a real TracerProvider + BatchSpanProcessor."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from halo_live.exporter import HaloSpanExporter, config
from halo_live.exporter import canonical
from halo_live.exporter.otel_exporter import otel_attrs_to_json
from tests._exporter_helpers import check_file


@pytest.fixture
def provider_for(tmp_path):
    """A TracerProvider exporting through HaloSpanExporter to tmp_path; shut down afterwards."""
    providers = []

    def make(**exporter_options):
        path = tmp_path / "otel.jsonl"
        provider = TracerProvider(resource=Resource.create(
            {"service.name": "otel-app", "deployment.environment": "test", "inference.run_id": "r-9"}))
        exporter = HaloSpanExporter(path, project_id="proj", **exporter_options)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        providers.append(provider)
        return provider, exporter, path

    yield make
    for provider in providers:
        provider.shutdown()


def test_openinference_spans_keep_types_and_project(provider_for):
    provider, _, path = provider_for()
    tracer = provider.get_tracer("openinference.instrumentation.openai", "0.1.9")
    with tracer.start_as_current_span("agent", attributes={
            "openinference.span.kind": "AGENT", "agent.name": "planner", "session.id": "s-1",
            "user.id": "u-1"}) as root:
        with tracer.start_as_current_span("ChatCompletion", kind=SpanKind.CLIENT, attributes={
                "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                "llm.provider": "openai", "llm.token_count.prompt": 12,
                "llm.token_count.completion": 5, "llm.cost.total": 0.25,
                "tags": ["a", "b"], "flags": [True, False], "scores": [1.5, 2.5], "n": 3}):
            pass
        root.add_event("checkpoint", {"step": 2})
    provider.force_flush()
    lines = check_file(path)
    llm, agent = lines
    attrs = llm[canonical.ATTRIBUTES]
    assert (attrs["n"], attrs["tags"], attrs["flags"], attrs["scores"]) == (3, ["a", "b"], [True, False], [1.5, 2.5])
    assert attrs[canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM
    assert (attrs[canonical.INF_LLM_MODEL_NAME], attrs[canonical.INF_LLM_PROVIDER]) == ("gpt-4o-mini", "openai")
    assert (attrs[canonical.INF_LLM_INPUT_TOKENS], attrs[canonical.INF_LLM_OUTPUT_TOKENS]) == (12, 5)
    assert attrs[canonical.INF_LLM_COST_TOTAL] == 0.25
    assert llm[canonical.KIND] == canonical.SPAN_KIND_CLIENT and agent[canonical.KIND] == canonical.SPAN_KIND_INTERNAL
    assert llm[canonical.PARENT_SPAN_ID] == agent[canonical.SPAN_ID] and agent[canonical.PARENT_SPAN_ID] == ""
    assert llm[canonical.TRACE_ID] == agent[canonical.TRACE_ID]
    assert agent[canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "planner"
    assert agent[canonical.ATTRIBUTES][canonical.INF_SESSION_ID] == "s-1" and agent[canonical.ATTRIBUTES][canonical.INF_USER_ID] == "u-1"
    assert agent[canonical.EVENTS][0]["name"] == "checkpoint" and agent[canonical.EVENTS][0]["attributes"] == {"step": 2}
    resource = llm[canonical.RESOURCE][canonical.ATTRIBUTES]
    assert resource["service.name"] == "otel-app" and resource["deployment.environment"] == "test"
    assert attrs[canonical.INF_RUN_ID] == "r-9"
    assert llm[canonical.SCOPE] == {"name": "openinference.instrumentation.openai", "version": "0.1.9"}
    assert attrs[canonical.INF_PROJECT_ID] == "proj"


@pytest.mark.parametrize("operation, kind", [
    ("chat", canonical.OBS_LLM), ("text_completion", canonical.OBS_LLM), ("generate_content", canonical.OBS_LLM),
    ("execute_tool", canonical.OBS_TOOL), ("invoke_agent", canonical.OBS_AGENT), ("create_agent", canonical.OBS_AGENT),
    ("invoke_workflow", canonical.OBS_CHAIN), ("embeddings", canonical.OBS_SPAN),
])
def test_genai_operations_map_to_observation_kinds(provider_for, operation, kind):
    provider, _, path = provider_for()
    tracer = provider.get_tracer("genai-lib")
    with tracer.start_as_current_span(operation, attributes={
            "gen_ai.operation.name": operation, "gen_ai.request.model": "m-req",
            "gen_ai.response.model": "m-resp", "gen_ai.usage.input_tokens": 7,
            "gen_ai.usage.output_tokens": 2, "gen_ai.agent.name": "helper",
            "gen_ai.tool.name": "search", "gen_ai.conversation.id": "conv-3",
            "gen_ai.provider.name": "anthropic"}):
        pass
    provider.force_flush()
    [line] = check_file(path)
    attrs = line[canonical.ATTRIBUTES]
    assert attrs[canonical.INF_OBSERVATION_KIND] == kind
    assert attrs.get(canonical.OI_SPAN_KIND) == (None if kind == canonical.OBS_SPAN else kind)
    assert attrs[canonical.INF_LLM_MODEL_NAME] == "m-resp"
    assert (attrs[canonical.INF_LLM_INPUT_TOKENS], attrs[canonical.INF_LLM_OUTPUT_TOKENS]) == (7, 2)
    assert attrs[canonical.INF_AGENT_NAME] == "helper" and attrs[canonical.INF_SESSION_ID] == "conv-3"
    assert attrs[canonical.INF_LLM_PROVIDER] == "anthropic"


def test_older_genai_spellings(provider_for):
    provider, _, path = provider_for()
    with provider.get_tracer("old").start_as_current_span("chat", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
            "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.completion_tokens": 4}):
        pass
    provider.force_flush()
    [line] = check_file(path)
    attrs = line[canonical.ATTRIBUTES]
    assert (attrs[canonical.INF_LLM_PROVIDER], attrs[canonical.INF_LLM_INPUT_TOKENS], attrs[canonical.INF_LLM_OUTPUT_TOKENS]) == ("openai", 9, 4)


def test_error_status_uses_exception_message_when_status_has_none(provider_for):
    provider, _, path = provider_for()
    tracer = provider.get_tracer("lib")
    with tracer.start_as_current_span("tool-a", record_exception=False, set_status_on_exception=False) as span:
        span.record_exception(ValueError("bad input"))
        span.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("tool-b") as span:
        span.set_status(Status(StatusCode.ERROR, "explicit message"))
    with tracer.start_as_current_span("ok") as span:
        span.set_status(Status(StatusCode.OK))
    provider.force_flush()
    a, b, ok = check_file(path)
    assert a[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "ValueError: bad input"}
    assert b[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "explicit message"}
    assert ok[canonical.STATUS]["code"] == canonical.STATUS_OK


def test_links_trace_state_and_schema_urls_stay_outside_strict_objects(tmp_path):
    path = tmp_path / "otel.jsonl"
    provider = TracerProvider(resource=Resource({"service.name": "s"}, schema_url="https://res/1"))
    provider.add_span_processor(SimpleSpanProcessor(HaloSpanExporter(path)))
    tracer = provider.get_tracer("lib", "2", schema_url="https://scope/1", attributes={"scope.attr": 1})
    with tracer.start_as_current_span("first") as first:
        pass
    with tracer.start_as_current_span("second", links=[Link(first.get_span_context(), {"why": "retry"})]):
        pass
    provider.shutdown()
    _, second = check_file(path)  # check_file asserts status/resource/scope hold only their keys
    [link] = second[canonical.LINKS]
    assert link["span_id"] == canonical.hex_id(first.get_span_context().span_id, 16)
    assert link["attributes"] == {"why": "retry"}
    assert second["resource_schema_url"] == "https://res/1"
    assert second["scope_schema_url"] == "https://scope/1"
    assert second["scope_attributes"] == {"scope.attr": 1}


def test_export_results_and_lifecycle(tmp_path):
    exporter = HaloSpanExporter(tmp_path / "x.jsonl", wait_for_write=True)
    assert exporter.export([]) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    exporter.shutdown()
    exporter.shutdown()
    assert exporter.export([]) is SpanExportResult.FAILURE


def test_project_id_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(config.HALO_PROJECT_ID, "env-proj")
    path = tmp_path / "otel.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(HaloSpanExporter(path)))
    with provider.get_tracer("lib").start_as_current_span("s"):
        pass
    provider.shutdown()
    [line] = check_file(path)
    assert line[canonical.ATTRIBUTES][canonical.INF_PROJECT_ID] == "env-proj"


def test_otel_attrs_to_json_keeps_json_types():
    assert otel_attrs_to_json({"i": 1, "f": 1.5, "b": True, "s": "x", "t": (1, 2), "nan": float("nan")}) == {
        "i": 1, "f": 1.5, "b": True, "s": "x", "t": [1, 2], "nan": "nan"}


@pytest.mark.reference
def test_reference_loads_otel_output(provider_for, halo_reference, tmp_path):
    provider, _, path = provider_for()
    tracer = provider.get_tracer("lib")
    for i in range(3):
        with tracer.start_as_current_span("agent", attributes={"gen_ai.operation.name": "invoke_agent",
                                                                "gen_ai.agent.name": "a"}):
            with tracer.start_as_current_span("chat", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": f"m-{i % 2}",
                    "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}):
                pass
            if i == 0:
                with tracer.start_as_current_span("tool", attributes={
                        "openinference.span.kind": "TOOL", "tool.name": "t"}) as span:
                    span.set_status(Status(StatusCode.ERROR, "tool failed"))
    provider.force_flush()
    lines = check_file(path)
    overview = halo_reference.load_counts([path], tmp_path / "ref-index")
    assert overview["total_traces"] == 3 and overview["total_spans"] == len(lines) == 7
    assert overview["error_trace_count"] == 1 and overview["tool_error_span_count"] == 1
    assert sorted(overview["model_names"]) == ["m-0", "m-1"]
    assert overview["agent_names"] == ["a"]
    assert overview["service_names"] == ["otel-app"]


@pytest.mark.reference
def test_reference_counts_a_failed_genai_tool_span(provider_for, halo_reference, tmp_path):
    provider, _, path = provider_for()
    tracer = provider.get_tracer("genai-lib")
    with tracer.start_as_current_span("invoke_agent a", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}):
        with tracer.start_as_current_span("execute_tool search", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}) as span:
            span.set_status(Status(StatusCode.ERROR, "search timed out"))
        with tracer.start_as_current_span("execute_tool guarded", attributes={
                "gen_ai.operation.name": "execute_tool", "openinference.span.kind": "CHAIN"}) as span:
            span.set_status(Status(StatusCode.ERROR, "not a tool for the reference"))
    provider.force_flush()
    check_file(path)
    overview = halo_reference.load_counts([path], tmp_path / "ref-index")
    assert overview["otel_error_span_count"] == 2 and overview["tool_error_span_count"] == 1
    from halo_live.engine.tools import open_store, run_tool
    with open_store(path) as store:
        ours = run_tool(store, "get_dataset_overview", {})["result"]
    assert (ours["otel_error_span_count"], ours["tool_error_span_count"]) == (2, 1)
