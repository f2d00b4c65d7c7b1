"""Recording an outcome: `record_outcome` in a real Agents SDK run (stub model server), in an
OpenTelemetry app (an evaluation event through `halo serve` and through `HaloSpanExporter`),
and what the receiver makes of an OTel app's own `gen_ai.evaluation.result` events and spans."""

from __future__ import annotations

import asyncio
import logging

import openai
import pytest
from agents import Agent, Runner, trace
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from halo_live import record_outcome
from halo_live.demo.model_server import ModelServer, Reply, ScriptedPolicy
from halo_live.exporter import HaloSpanExporter, canonical, setup_tracing
from halo_live.indexer import IndexFilters, TraceIndex
from tests._exporter_helpers import check_file, sdk_processors_restored
from tests._otlp_helpers import read_lines, servers

EVAL = canonical.EVALUATION_RESULT


def outcome_lines(lines: list[dict]) -> list[dict]:
    return [x for x in lines if canonical.INF_OUTCOME_PASSED in x[canonical.ATTRIBUTES]]


def indexed(path, tmp_path):
    idx = TraceIndex.open(path, tmp_path / "idx")
    idx.catch_up()
    return idx


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_an_sdk_run_records_its_outcome_in_its_own_trace(tmp_path, api):
    path = tmp_path / "traces.jsonl"
    with sdk_processors_restored(), ModelServer(ScriptedPolicy([Reply(text="42")] * 2)) as server:
        processor = setup_tracing(service_name="svc", project_id="proj", path=path, run_id="run-1")
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        model_cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        agent = Agent(name="solver", instructions="Answer.", model=model_cls(model="m", openai_client=client))

        async def task(task_id: str, expected: str) -> bool:
            with trace(f"task {task_id}", group_id=task_id):
                result = await Runner.run(agent, "What is 6 x 7?")
                passed = result.final_output == expected
                return record_outcome(passed=passed, score=float(passed), task_id=task_id,
                                      label="correct" if passed else "wrong answer",
                                      explanation=f"expected {expected}")

        async def both():
            try:
                return [await task("t-right", "42"), await task("t-wrong", "41")]
            finally:
                await client.close()

        assert asyncio.run(both()) == [True, True]
        processor.shutdown()
    lines = check_file(path)  # every line, the outcome spans too, is a canonical span
    outcomes = outcome_lines(lines)
    assert [x[canonical.NAME] for x in outcomes] == [EVAL, EVAL]
    right, wrong = outcomes
    assert right[canonical.ATTRIBUTES].items() >= {
        canonical.INF_OUTCOME_PASSED: True, canonical.GENAI_EVALUATION_SCORE_VALUE: 1.0,
        canonical.INF_OUTCOME_TASK_ID: "t-right", canonical.GENAI_EVALUATION_SCORE_LABEL: "correct",
        canonical.GENAI_EVALUATION_EXPLANATION: "expected 42", canonical.GENAI_EVALUATION_NAME: "task_outcome",
        canonical.OI_SPAN_KIND: canonical.OI_KIND_EVALUATOR, canonical.INF_OBSERVATION_KIND: canonical.OBS_SPAN}.items()
    for x in outcomes:  # in the task's own trace, beside the run's spans
        others = [y for y in lines if y[canonical.TRACE_ID] == x[canonical.TRACE_ID] and y is not x]
        assert any(y[canonical.NAME].startswith("agent.") for y in others)
    with indexed(path, tmp_path) as idx, idx.snapshot() as snap:
        assert snap.trace_ids(IndexFilters(outcome="passed")) == [right[canonical.TRACE_ID]]
        assert snap.trace_ids(IndexFilters(outcome="failed")) == [wrong[canonical.TRACE_ID]]
        assert snap.trace(wrong[canonical.TRACE_ID]).outcome.task_id == "t-wrong"


def test_record_outcome_outside_any_trace_says_so_once_and_returns_false(caplog):
    with caplog.at_level(logging.WARNING):
        assert record_outcome(passed=True) is False
    with pytest.raises(ValueError, match="passed"):
        record_outcome(passed="yes")
    with pytest.raises(ValueError, match="score"):
        record_outcome(score=float("nan"))
    with pytest.raises(ValueError, match="score"):
        record_outcome(score=True)


def _otel_app(exporter, *, how: str) -> str:
    """An OTel-instrumented app's task; its outcome as `how` says. Returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("invoke_agent solver",
                                      attributes={"gen_ai.operation.name": "invoke_agent"}) as root:
        with tracer.start_as_current_span("chat m", attributes={"gen_ai.operation.name": "chat"}):
            pass
        if how == "record_outcome":  # ours, on the current span
            assert record_outcome(passed=False, score=0.2, task_id="q-7", label="hallucinated")
        elif how == "event":  # an OTel GenAI evaluator's own event: a label, no boolean
            root.add_event(EVAL, {canonical.GENAI_EVALUATION_NAME: "correctness",
                                  canonical.GENAI_EVALUATION_SCORE_VALUE: 0.9,
                                  canonical.GENAI_EVALUATION_SCORE_LABEL: "pass"})
        else:  # an evaluation span
            with tracer.start_as_current_span(EVAL, attributes={
                    canonical.GENAI_EVALUATION_NAME: "relevance", canonical.GENAI_EVALUATION_SCORE_LABEL: "Fail",
                    canonical.GENAI_EVALUATION_EXPLANATION: "off topic"}):
                pass
    trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


EXPECTED = {  # how -> (passed, score, task id, label)
    "record_outcome": (False, 0.2, "q-7", "hallucinated"),
    "event": (True, 0.9, None, "pass"),
    "span": (False, None, None, "Fail"),
}


@pytest.mark.parametrize("how", list(EXPECTED))
def test_an_otel_apps_evaluation_through_the_receiver(tmp_path, how):
    path = tmp_path / "t.jsonl"
    with servers(path) as s:
        trace_id = _otel_app(HttpExporter(endpoint=s.http_url, timeout=10), how=how)
    [line] = outcome_lines(read_lines(path))
    assert line[canonical.TRACE_ID] == trace_id
    attrs = line[canonical.ATTRIBUTES]
    assert attrs[canonical.INF_OUTCOME_PASSED] == EXPECTED[how][0]
    if how != "span":  # the event's attributes are copied onto the span that carries it
        assert line[canonical.NAME] == "invoke_agent solver"
        assert line[canonical.EVENTS][-1][canonical.EVENT_NAME] == EVAL
    with indexed(path, tmp_path) as idx, idx.snapshot() as snap:
        o = snap.trace(trace_id).outcome
        assert (o.passed, o.score, o.task_id, o.label) == EXPECTED[how]


def test_record_outcome_in_an_otel_app_writing_with_halo_span_exporter(tmp_path):
    path = tmp_path / "t.jsonl"
    exporter = HaloSpanExporter(path, project_id="p")
    trace_id = _otel_app(exporter, how="record_outcome")
    exporter.shutdown()
    check_file(path)
    with indexed(path, tmp_path) as idx, idx.snapshot() as snap:
        o = snap.trace(trace_id).outcome
        assert (o.passed, o.score, o.task_id, o.label) == EXPECTED["record_outcome"]


def test_a_sender_that_projected_its_outcome_is_left_as_it_wrote_it():
    mine = {canonical.INF_OUTCOME_PASSED: None, canonical.GENAI_EVALUATION_SCORE_LABEL: "pass"}
    assert canonical.project_outcome(mine) == {}
    assert canonical.project_outcome({"x": 1}, [{"name": "exception"}]) == {}
