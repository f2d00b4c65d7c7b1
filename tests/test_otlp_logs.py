"""halo serve's /v1/logs (HTTP) and LogsService (gRPC): every record kept, GenAI events folded into spans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from opentelemetry import trace as trace_api
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from halo_live.exporter import canonical
from halo_live.exporter.otlp_logs import OPERATION_DETAILS, logs_path_for
from tests._otlp_helpers import read_lines, servers

ROOT = Path(__file__).resolve().parents[1]
MESSAGES_IN = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
MESSAGES_OUT = [{"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}]


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_util_genai_event_mode_content_reaches_the_spans(tmp_path):
    """opentelemetry-util-genai with content as events only: the messages arrive as logs."""
    env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENT_ONLY", "PYTHONPATH": str(ROOT)}
    with servers(tmp_path / "http.jsonl") as http, servers(tmp_path / "grpc.jsonl") as grpc:
        done = subprocess.run(
            [sys.executable, "-m", "tests._instrumented_run", "genai", str(tmp_path / "exporter.jsonl"),
             "--http", http.http_url, "--grpc", grpc.grpc_target,
             "--logs-http", http.logs_url, "--logs-grpc", grpc.grpc_target],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    for path in ("http", "grpc"):
        logs = read_lines(logs_path_for(tmp_path / f"{path}.jsonl"))
        assert [r["log_record"]["event_name"] for r in logs] == [OPERATION_DETAILS] * 6, path
        llms = [line for line in read_lines(tmp_path / f"{path}.jsonl")
                if line[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM]
        assert len(llms) == 6
        for line in llms:
            attrs = line[canonical.ATTRIBUTES]
            assert json.loads(attrs[canonical.OI_INPUT_VALUE])[0]["role"] == "system", path
            assert json.loads(attrs[canonical.OI_OUTPUT_VALUE])[0]["role"] == "assistant", path
            assert [e["name"] for e in line[canonical.EVENTS]] == [OPERATION_DETAILS]
    # In-process, HaloSpanExporter sees spans only: the content sent as events is not on its lines.
    exporter_llm = [line for line in read_lines(tmp_path / "exporter.jsonl")
                    if line[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM][0]
    assert canonical.OI_INPUT_VALUE not in exporter_llm[canonical.ATTRIBUTES]


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_events_before_their_span_fold_and_after_it_stay_in_the_logs_file(tmp_path, transport):
    out = tmp_path / "t.jsonl"
    with servers(out) as s:
        log_exporter = (HttpLogExporter(endpoint=s.logs_url, timeout=10) if transport == "http"
                        else GrpcLogExporter(endpoint=s.grpc_target, insecure=True, timeout=10))
        logger_provider = LoggerProvider(resource=Resource.create({"service.name": "events"}))
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
        logger = logger_provider.get_logger("genai-events")
        provider = TracerProvider(resource=Resource.create({"service.name": "events"}))
        provider.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=s.http_url, timeout=10)))
        tracer = provider.get_tracer("genai")
        details = {"gen_ai.input.messages": json.dumps(MESSAGES_IN),
                   "gen_ai.output.messages": json.dumps(MESSAGES_OUT)}
        with tracer.start_as_current_span("chat early", attributes={"gen_ai.operation.name": "chat"}) as early:
            logger.emit(LogRecord(event_name=OPERATION_DETAILS, attributes=details,
                                  context=trace_api.set_span_in_context(early)))
        with tracer.start_as_current_span("chat late", attributes={"gen_ai.operation.name": "chat"}) as late:
            pass
        logger.emit(LogRecord(event_name=OPERATION_DETAILS, attributes=details,
                              context=trace_api.set_span_in_context(late)))
        logger.emit(LogRecord(body="an application log", attributes={"k": 1}))
        logger_provider.shutdown()
        provider.shutdown()
    lines = {line[canonical.NAME]: line for line in read_lines(out)}
    attrs = lines["chat early"][canonical.ATTRIBUTES]
    assert json.loads(attrs[canonical.OI_INPUT_VALUE]) == MESSAGES_IN
    assert json.loads(attrs[canonical.OI_OUTPUT_VALUE]) == MESSAGES_OUT
    assert canonical.OI_INPUT_VALUE not in lines["chat late"][canonical.ATTRIBUTES]  # written before it came
    logs = read_lines(logs_path_for(out))
    assert len(logs) == 3  # nothing received is lost
    assert logs[1]["log_record"]["span_id"] == format(late.get_span_context().span_id, "016x")
    assert logs[2]["log_record"]["body"] == "an application log"
    assert logs[2]["resource"]["attributes"]["service.name"] == "events"


def test_bad_logs_requests_get_protocol_errors(tmp_path):
    out = tmp_path / "t.jsonl"
    with servers(out) as s:
        status, _ = _post(s.logs_url, b"{not json")
        assert status == 400
        status, _ = _post(s.logs_url, b"\x00garbage", "application/x-protobuf")
        assert status == 400
        body = orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1", "body": {"stringValue": "ok"}},
            {"timeUnixNano": "1", "spanId": "abc"},  # not 8 bytes
        ]}]}]})
        status, answer = _post(s.logs_url, body)
        assert status == 200
        assert orjson.loads(answer)["partialSuccess"]["rejectedLogRecords"] == "1"
    [record] = read_lines(logs_path_for(out))
    assert record["log_record"]["body"] == "ok"
    assert not out.exists() or out.read_bytes() == b""  # logs never reach the trace file
