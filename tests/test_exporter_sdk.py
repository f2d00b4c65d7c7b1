"""setup_tracing(): every Agents SDK span becomes one canonical line (real SDK, real model server)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import openai
import pytest
from agents import (
    Agent, GuardrailFunctionOutput, ModelSettings, RunConfig, Runner, function_tool, input_guardrail,
)
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from agents.tracing import (
    SpanError, agent_span, custom_span, function_span, generation_span, get_trace_provider,
    guardrail_span, handoff_span, mcp_tools_span, response_span, speech_group_span, speech_span,
    trace, transcription_span,
)
from agents.tracing.create import task_span, turn_span
from agents.tracing.span_data import SpanData

from halo_live.demo.model_server import ModelServer, Reply, ScriptedPolicy, ToolCall
from halo_live.exporter import config, setup_tracing
from halo_live.exporter import canonical
from tests._exporter_helpers import check_file, sdk_processors_restored

ROOT = Path(__file__).resolve().parents[1]
MODEL = "demo-model"


@pytest.fixture
def traced(tmp_path):
    """setup_tracing() into tmp_path; the SDK's processors are restored afterwards."""
    path = tmp_path / "traces.jsonl"
    with sdk_processors_restored():
        processor = setup_tracing(service_name="svc", project_id="proj", path=path, run_id="run-1")
        yield processor, path
        processor.shutdown()


def by_name(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line[canonical.NAME]: line for line in lines}


# --- every span type, created directly ------------------------------------------------------


class FutureSpanData(SpanData):
    """A span type a later SDK might add."""

    @property
    def type(self) -> str:
        return "future_thing"

    def export(self) -> dict[str, Any]:
        return {"type": "future_thing", "name": "x", "size": 3, "detail": {"k": [1, 2]}}


def test_every_span_type_becomes_one_line(traced):
    processor, path = traced
    with trace("wf", group_id="g-1", metadata={"user_id": "u-1", "suite": "s"}):
        with task_span("job"):
            with agent_span(name="A", tools=["t"], handoffs=["B"], output_type="str"):
                with turn_span(1, "A"):
                    with generation_span(model="gpt-x", input=[{"role": "user", "content": "hi"}],
                                         output=[{"role": "assistant", "content": "yo"}],
                                         usage={"input_tokens": 3, "output_tokens": 4}):
                        pass
                    with response_span():
                        pass
                    with function_span(name="t", input='{"a": 1}', output="res") as failing:
                        failing.set_error(SpanError(message="boom", data={"why": "x"}))
                    with mcp_tools_span(server="srv", result=["a", "b"]):
                        pass
                    with guardrail_span("g", triggered=True):
                        pass
                    with handoff_span(from_agent="A", to_agent="B"):
                        pass
                    with custom_span("c", {"n": 1, "nested": {"x": 1}}):
                        pass
                    with speech_group_span(input="text"):
                        with speech_span(model="tts-1", input="hi", output="AAAA"):
                            pass
                    with transcription_span(model="stt-1", input="AAAA", output="hi"):
                        pass
                    with get_trace_provider().create_span(span_data=FutureSpanData()):
                        pass
    processor.force_flush()
    lines = check_file(path)
    assert len(lines) == 14  # one line per span, nothing dropped
    spans = by_name(lines)
    kinds = {name: line[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] for name, line in spans.items()}
    assert kinds == {
        "task.job": "SPAN", "agent.A": "AGENT", "turn.1": "SPAN", "generation.gpt-x": "LLM",
        "response": "LLM", "function.t": "TOOL", "mcp_tools.srv": "TOOL", "guardrail.g": "GUARDRAIL",
        "handoff.B": "CHAIN", "custom.c": "SPAN", "speech_group": "SPAN", "speech.tts-1": "SPAN",
        "transcription.stt-1": "SPAN", "future_thing.x": "SPAN",
    }
    assert len({line[canonical.TRACE_ID] for line in lines}) == 1
    ids = {line[canonical.SPAN_ID] for line in lines}
    assert all(line[canonical.PARENT_SPAN_ID] in ids for line in lines if line[canonical.NAME] != "task.job")
    assert spans["task.job"][canonical.PARENT_SPAN_ID] == ""
    # Everything under the agent carries its name; the task above it does not.
    assert {n for n, line in spans.items() if line[canonical.ATTRIBUTES].get(canonical.INF_AGENT_NAME) == "A"} == \
        set(spans) - {"task.job"}
    gen = spans["generation.gpt-x"][canonical.ATTRIBUTES]
    assert gen[canonical.INF_LLM_MODEL_NAME] == "gpt-x" and gen[canonical.INF_LLM_PROVIDER] == "openai"
    assert (gen[canonical.INF_LLM_INPUT_TOKENS], gen[canonical.INF_LLM_OUTPUT_TOKENS]) == (3, 4)
    assert json.loads(gen[canonical.OI_INPUT_MESSAGES]) == [{"role": "user", "content": "hi"}]
    assert gen[canonical.OI_OUTPUT_VALUE] == "yo"
    tool = spans["function.t"]
    assert tool[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "boom"}
    assert json.loads(tool[canonical.ATTRIBUTES]["sdk.error.data"]) == {"why": "x"}
    assert tool[canonical.ATTRIBUTES][canonical.OI_TOOL_NAME] == "t" and tool[canonical.ATTRIBUTES][canonical.OI_INPUT_VALUE] == '{"a": 1}'
    assert all(line[canonical.STATUS]["code"] == canonical.STATUS_OK for line in lines if line is not tool)
    agent = spans["agent.A"][canonical.ATTRIBUTES]
    assert (agent[canonical.OI_AGENT_NAME], agent["agent.tools"], agent["agent.handoffs"]) == ("A", '["t"]', '["B"]')
    assert spans["guardrail.g"][canonical.ATTRIBUTES]["guardrail.triggered"] is True
    assert spans["custom.c"][canonical.ATTRIBUTES]["sdk.data.n"] == 1
    future = spans["future_thing.x"][canonical.ATTRIBUTES]
    assert (future["sdk.span.type"], future["sdk.data.size"], future[canonical.OI_SPAN_KIND]) == ("future_thing", 3, "CHAIN")
    assert spans["speech.tts-1"][canonical.ATTRIBUTES][canonical.INF_LLM_MODEL_NAME] == "tts-1"
    for line in lines:
        attrs = line[canonical.ATTRIBUTES]
        assert attrs[canonical.INF_SESSION_ID] == "g-1" and attrs[canonical.INF_USER_ID] == "u-1"
        assert attrs["agent.workflow.metadata.suite"] == "s"
        assert attrs[canonical.INF_PROJECT_ID] == "proj"
        assert line[canonical.RESOURCE][canonical.ATTRIBUTES] == {canonical.SERVICE_NAME: "svc", canonical.INF_RUN_ID: "run-1"}
        assert line[canonical.SCOPE][canonical.SCOPE_NAME_FIELD] == "openai-agents-sdk"


# --- real runs against the model server ------------------------------------------------------


@function_tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return f"SUM-{a + b}"


@function_tool
def explode() -> str:
    """Always fails."""
    raise RuntimeError("kaboom")


@input_guardrail
def polite(ctx, agent, user_input):
    return GuardrailFunctionOutput(output_info={"ok": True}, tripwire_triggered=False)


def scripted() -> ScriptedPolicy:
    return ScriptedPolicy([
        Reply(tool_calls=[ToolCall("add", '{"a": 1, "b": 2}'), ToolCall("explode")],
              input_tokens=100, output_tokens=10),
        Reply(tool_calls=[ToolCall("transfer_to_specialist")], input_tokens=200, output_tokens=5),
        Reply(text="final answer", input_tokens=300, output_tokens=3),
    ])


def run_harness(api: str, streamed: bool, *, sensitive: bool = True, prompt: str = "hello") -> Any:
    """triage (add, explode, guardrail) hands off to specialist; returns the run result."""
    with ModelServer(scripted()) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        model_cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        settings = ModelSettings(include_usage=True)
        specialist = Agent(name="specialist", instructions="Answer.", model_settings=settings,
                           model=model_cls(model=MODEL, openai_client=client))
        triage = Agent(name="triage", instructions="Route.", tools=[add, explode],
                       handoffs=[specialist], input_guardrails=[polite], model_settings=settings,
                       model=model_cls(model=MODEL, openai_client=client))
        run_config = RunConfig(workflow_name="harness", group_id="conv-1",
                               trace_metadata={"user_id": "u-7", "task": "t1"},
                               trace_include_sensitive_data=sensitive)

        async def go():
            try:
                if not streamed:
                    return await Runner.run(triage, prompt, run_config=run_config)
                result = Runner.run_streamed(triage, prompt, run_config=run_config)
                async for _ in result.stream_events():
                    pass
                return result
            finally:
                await client.close()

        return asyncio.run(go())


APIS = ["responses", "chat"]
LLM_TYPE = {"responses": "response", "chat": "generation"}


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize("api", APIS)
def test_real_run_writes_every_span_with_models_agents_and_errors(traced, api, streamed):
    processor, path = traced
    result = run_harness(api, streamed)
    assert result.final_output == "final answer"
    processor.force_flush()
    lines = check_file(path)
    assert len({line[canonical.TRACE_ID] for line in lines}) == 1
    ids = {line[canonical.SPAN_ID] for line in lines}
    assert all(not line[canonical.PARENT_SPAN_ID] or line[canonical.PARENT_SPAN_ID] in ids for line in lines)
    assert sum(1 for line in lines if not line[canonical.PARENT_SPAN_ID]) == 1
    types = [line[canonical.NAME].split(".")[0] for line in lines]
    for expected in ("task", "agent", "turn", LLM_TYPE[api], "function", "handoff", "guardrail"):
        assert expected in types, (expected, types)

    llm = [line for line in lines if line[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM]
    assert len(llm) == 3
    for line in llm:
        attrs = line[canonical.ATTRIBUTES]
        assert attrs[canonical.INF_LLM_MODEL_NAME] == MODEL  # also on Responses spans
        assert attrs[canonical.INF_LLM_PROVIDER] == "openai"
        assert json.loads(attrs[canonical.OI_INPUT_MESSAGES]) and json.loads(attrs[canonical.OI_OUTPUT_MESSAGES])
        # the conversation once: no input.value copy, no flat per-message keys
        assert canonical.OI_INPUT_VALUE not in attrs
        assert not [key for key in attrs if key.startswith(f"{canonical.OI_INPUT_MESSAGES}.")]
    assert [line[canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] for line in llm] == ["triage", "triage", "specialist"]
    assert [(x[canonical.ATTRIBUTES][canonical.INF_LLM_INPUT_TOKENS], x[canonical.ATTRIBUTES][canonical.INF_LLM_OUTPUT_TOKENS])
            for x in llm] == [(100, 10), (200, 5), (300, 3)]
    assert llm[-1][canonical.ATTRIBUTES][canonical.OI_OUTPUT_VALUE] == "final answer"

    tools = {x[canonical.ATTRIBUTES][canonical.OI_TOOL_NAME]: x for x in lines
             if x[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_TOOL}
    assert set(tools) == {"add", "explode"}
    assert all(x[canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "triage" for x in tools.values())
    assert tools["add"][canonical.ATTRIBUTES][canonical.OI_OUTPUT_VALUE] == "SUM-3"
    assert json.loads(tools["add"][canonical.ATTRIBUTES][canonical.OI_INPUT_VALUE]) == {"a": 1, "b": 2}
    assert tools["add"][canonical.STATUS]["code"] == canonical.STATUS_OK
    assert tools["explode"][canonical.STATUS]["code"] == canonical.STATUS_ERROR
    assert tools["explode"][canonical.STATUS]["message"]
    assert [x for x in lines if x[canonical.STATUS]["code"] == canonical.STATUS_ERROR] == [tools["explode"]]

    agents = {x[canonical.ATTRIBUTES][canonical.OI_AGENT_NAME] for x in lines if x[canonical.NAME].startswith("agent.")}
    assert agents == {"triage", "specialist"}
    for line in lines:
        assert line[canonical.ATTRIBUTES][canonical.INF_SESSION_ID] == "conv-1"
        assert line[canonical.ATTRIBUTES]["agent.workflow.metadata.task"] == "t1"
        assert line[canonical.ATTRIBUTES][canonical.INF_USER_ID] == "u-7"


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_sensitive_data_the_sdk_withholds_is_not_written(traced, api, streamed):
    processor, path = traced
    run_harness(api, streamed=streamed, sensitive=False, prompt="SECRET-PROMPT")
    processor.force_flush()
    lines = check_file(path)
    raw = path.read_text()
    assert "SECRET-PROMPT" not in raw and "SUM-3" not in raw and "kaboom" not in raw
    for line in lines:
        attrs = line[canonical.ATTRIBUTES]
        assert canonical.OI_INPUT_MESSAGES not in attrs and canonical.OI_OUTPUT_MESSAGES not in attrs
        assert canonical.OI_INPUT_VALUE not in attrs and canonical.OI_OUTPUT_VALUE not in attrs
    llm = [x for x in lines if x[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM]
    assert len(llm) == 3 and all(x[canonical.ATTRIBUTES][canonical.INF_LLM_INPUT_TOKENS] for x in llm)
    # the model is not sensitive data: every LLM span still names it, Responses API included
    assert {x[canonical.ATTRIBUTES].get(canonical.INF_LLM_MODEL_NAME) for x in llm} == {MODEL}


@input_guardrail
def strict(ctx, agent, user_input):
    return GuardrailFunctionOutput(output_info={"reason": "rude"}, tripwire_triggered=True)


@pytest.mark.parametrize("api", APIS)
def test_tripped_guardrail_and_failed_model_call_become_error_spans(traced, api):
    processor, path = traced
    model_cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
    for reply, guardrails in ((Reply(text="x"), [strict]),
                              (Reply(error_status=500, error_message="overloaded"), [])):
        with ModelServer(ScriptedPolicy([reply])) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
            agent = Agent(name="a", input_guardrails=guardrails,
                          model=model_cls(model=MODEL, openai_client=client))

            async def go():
                try:
                    await Runner.run(agent, "hi")
                except Exception as exc:  # the run fails; its trace must say why
                    return exc
                finally:
                    await client.close()

            assert asyncio.run(go()) is not None
    processor.force_flush()
    lines = check_file(path)
    errors = {(x[canonical.NAME].split(".")[0], x[canonical.STATUS]["message"]) for x in lines
              if x[canonical.STATUS]["code"] == canonical.STATUS_ERROR}
    llm_type = LLM_TYPE[api]
    assert errors == {("turn", "Guardrail tripwire triggered"), (llm_type, "Error getting response"),
                      ("agent", "Error in agent run")}
    [failed] = [x for x in lines if x[canonical.NAME].startswith(llm_type)]
    assert "overloaded" in failed[canonical.ATTRIBUTES]["sdk.error.data"]
    [guard] = [x for x in lines if x[canonical.NAME] == "guardrail.strict"]
    assert guard[canonical.ATTRIBUTES]["guardrail.triggered"] is True


# --- setup ---------------------------------------------------------------------------------


def test_setup_replaces_the_default_uploader_and_can_keep_it(tmp_path):
    from agents.tracing.processors import default_processor

    with sdk_processors_restored():
        ours = setup_tracing(path=tmp_path / "a.jsonl")
        installed = get_trace_provider()._multi_processor._processors
        assert installed == (ours,)
        both = setup_tracing(path=tmp_path / "b.jsonl", keep_openai_exporter=True)
        installed = get_trace_provider()._multi_processor._processors
        assert installed == (default_processor(), both)
        assert not get_trace_provider()._disabled
        ours.shutdown()
        both.shutdown()


def test_setup_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(config.HALO_TRACES_PATH, str(tmp_path / "env.jsonl"))
    monkeypatch.setenv(config.HALO_SERVICE_NAME, "env-svc")
    monkeypatch.setenv(config.HALO_PROJECT_ID, "env-proj")
    monkeypatch.setenv(config.HALO_RUN_ID, "env-run")
    with sdk_processors_restored():
        processor = setup_tracing()
        with trace("wf"):
            with custom_span("c", {}):
                pass
        processor.shutdown()
        processor.shutdown()  # safe twice
    [line] = check_file(tmp_path / "env.jsonl")
    assert line[canonical.RESOURCE][canonical.ATTRIBUTES] == {canonical.SERVICE_NAME: "env-svc", canonical.INF_RUN_ID: "env-run"}
    assert line[canonical.ATTRIBUTES][canonical.INF_PROJECT_ID] == "env-proj"


def test_setup_rejects_bad_options(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="colour"):
        setup_tracing(path=tmp_path / "x.jsonl", colour="blue", install=False)
    with pytest.raises(ValueError, match="flush_interval"):
        setup_tracing(path=tmp_path / "x.jsonl", flush_interval=-1, install=False)
    monkeypatch.setenv(config.HALO_FSYNC, "maybe")
    with pytest.raises(ValueError, match="HALO_FSYNC"):
        setup_tracing(path=tmp_path / "x.jsonl", install=False)


def test_forgotten_shutdown_loses_nothing(tmp_path):
    path = tmp_path / "t.jsonl"
    code = textwrap.dedent("""
        import sys
        from agents.tracing import trace, custom_span
        from halo_live.exporter import setup_tracing
        setup_tracing(path=sys.argv[1], flush_interval=3600)
        with trace("wf"):
            for i in range(50):
                with custom_span("c", {"i": i}):
                    pass
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENAI_AGENTS_DISABLE_TRACING="0")
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(x[canonical.ATTRIBUTES]["sdk.data.i"] for x in check_file(path)) == list(range(50))


# --- the reference loads what we write ----------------------------------------------------------


@pytest.mark.reference
def test_reference_loads_real_runs_with_expected_counts(traced, halo_reference, tmp_path):
    processor, path = traced
    for api in APIS:
        for streamed in (False, True):
            run_harness(api, streamed)
    processor.force_flush()
    lines = check_file(path)
    overview = halo_reference.load_counts([path], tmp_path / "ref-index")
    assert overview["total_traces"] == 4
    assert overview["total_spans"] == len(lines)
    assert overview["error_trace_count"] == 4
    assert overview["otel_error_span_count"] == 4
    assert overview["tool_error_span_count"] == 4
    assert overview["model_names"] == [MODEL]
    assert sorted(overview["agent_names"]) == ["specialist", "triage"]
    assert overview["service_names"] == ["svc"]
    assert overview["missing_parent_count"] == 0


@pytest.mark.reference
def test_reference_loads_every_span_type(traced, halo_reference, tmp_path):
    processor, path = traced
    test_every_span_type_becomes_one_line(traced)  # writes (and checks) one span of every type
    overview = halo_reference.load_counts([path], tmp_path / "ref-index")
    assert (overview["total_traces"], overview["total_spans"]) == (1, 14)
    assert (overview["otel_error_span_count"], overview["tool_error_span_count"]) == (1, 1)
    assert sorted(overview["model_names"]) == ["gpt-x", "stt-1", "tts-1"]
    assert overview["agent_names"] == ["A"]


def test_unwritable_path_never_breaks_the_app(tmp_path, caplog):
    target = tmp_path / "a-directory"
    target.mkdir()
    with sdk_processors_restored():
        processor = setup_tracing(path=target)  # open() will fail with EISDIR
        with trace("wf"):
            with custom_span("c", {}):
                pass
        processor.force_flush(timeout=10)
        processor.shutdown()
    assert processor.dropped == 1
    assert "cannot write" in caplog.text


def test_sdk_processor_and_otel_exporter_can_share_one_writer(tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from halo_live.exporter import HaloSpanExporter, JsonlWriter

    writer = JsonlWriter(tmp_path / "both.jsonl")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(HaloSpanExporter(writer=writer)))
    with sdk_processors_restored():
        processor = setup_tracing(writer=writer)
        with trace("wf"):
            with custom_span("sdk-side", {}):
                with provider.get_tracer("lib").start_as_current_span("otel-side"):
                    pass
        processor.shutdown()  # flushes, but leaves the shared writer open
    provider.shutdown()
    writer.shutdown()
    assert sorted(x[canonical.NAME] for x in check_file(tmp_path / "both.jsonl")) == ["custom.sdk-side", "otel-side"]


@pytest.mark.reference
@pytest.mark.parametrize("api", APIS)
def test_the_conversation_written_once_is_all_visible_in_the_references_view(traced, halo_reference,
                                                                             tmp_path, api):
    processor, path = traced
    run_harness(api, streamed=False, prompt="PROMPT-MARK")
    processor.force_flush()
    lines = check_file(path)
    llm = [x for x in lines if x[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM]
    trace_id = llm[0][canonical.TRACE_ID]
    answer = halo_reference.run([path], [{"tool": "view_spans", "args": {
        "trace_id": trace_id, "span_ids": [x[canonical.SPAN_ID] for x in llm]}}], tmp_path / "ref")
    shown = " ".join(str(value) for span in answer["answers"][0]["ok"]["result"]["spans"]
                     for value in span["attributes"].values())
    # the prompt, the instructions, the tool calls and a result, and the answer: all on screen
    for piece in ("PROMPT-MARK", "Route.", "Answer.", "transfer_to_specialist", "SUM-3", "final answer"):
        assert piece in shown, piece


def test_the_flat_openinference_keys_are_an_option(tmp_path):
    path = tmp_path / "flat.jsonl"
    with sdk_processors_restored():
        processor = setup_tracing(path=path, openinference_flat_messages=True)
        run_harness("chat", streamed=False, prompt="PROMPT-MARK")
        processor.shutdown()
    llm = [x for x in check_file(path)
           if x[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM]
    flat = llm[0][canonical.ATTRIBUTES]
    assert flat[f"{canonical.OI_INPUT_MESSAGES}.1.message.content"] == "PROMPT-MARK"
