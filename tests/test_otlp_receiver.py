"""The OTLP/gRPC and OTLP/HTTP endpoints, driven by the official OTel exporters and raw requests."""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.request
import zlib

import grpc
import orjson
import pytest
import zstandard
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from halo_live.exporter import canonical
from halo_live.exporter.writer import JsonlWriter
from tests._otlp_helpers import json_request, json_span, make_agent_spans, read_lines, servers

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _post(url: str, body: bytes, content_type: str = "application/x-protobuf",
          headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _grpc_export(target: str, body: bytes, metadata=(), compression=None):
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(EXPORT_METHOD, request_serializer=None,
                                   response_deserializer=ExportTraceServiceResponse.FromString)
        return call.with_call(body, metadata=metadata, timeout=10, compression=compression)


def _proto_body() -> bytes:
    return encode_spans(make_agent_spans()).SerializeToString()


def _assert_matches(lines: list[dict], spans) -> None:
    assert len(lines) == len(spans)
    by_id = {line[canonical.SPAN_ID]: line for line in lines}
    for span in spans:
        line = by_id[format(span.context.span_id, "016x")]
        assert line[canonical.TRACE_ID] == format(span.context.trace_id, "032x")
        assert line[canonical.NAME] == span.name
        assert line[canonical.START_TIME] == canonical.iso_from_ns(span.start_time)
        assert line[canonical.ATTRIBUTES][canonical.INF_PROJECT_ID] == "proj-default"
        assert line[canonical.RESOURCE][canonical.ATTRIBUTES]["service.name"] == "otlp-agent"


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_official_grpc_exporter_spans_are_written_before_success(tmp_path, compression):
    out = tmp_path / "t.jsonl"
    with servers(out, token="s3cret") as s:
        exporter = GrpcExporter(endpoint=s.grpc_target, insecure=True, compression=compression,
                                headers=(("authorization", "Bearer s3cret"),), timeout=10)
        spans = make_agent_spans()
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        _assert_matches(read_lines(out), spans)  # before shutdown: acknowledged means written
        exporter.shutdown()


@pytest.mark.parametrize("compression", [HttpCompression.NoCompression, HttpCompression.Gzip,
                                         HttpCompression.Deflate])
def test_official_http_exporter_spans_are_written_before_success(tmp_path, compression):
    out = tmp_path / "t.jsonl"
    with servers(out) as s:
        exporter = HttpExporter(endpoint=s.http_url, compression=compression, timeout=10)
        spans = make_agent_spans()
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        _assert_matches(read_lines(out), spans)
        exporter.shutdown()


def test_http_json_and_zstd_bodies(tmp_path):
    out = tmp_path / "t.jsonl"
    with servers(out) as s:
        status, headers, body = _post(s.http_url, json_request([json_span()]), "application/json")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert orjson.loads(body) == {}
        packed = zstandard.ZstdCompressor().compress(_proto_body())
        status, _, body = _post(s.http_url, packed, headers={"Content-Encoding": "zstd"})
        assert status == 200 and ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans == 0
        raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = raw_deflate.compress(_proto_body()) + raw_deflate.flush()
        assert _post(s.http_url, data, headers={"Content-Encoding": "deflate"})[0] == 200
    lines = read_lines(out)
    # (the JSON span, an LLM span whose parent never comes, waits for its agent until close)
    assert len(lines) == 7 and json_span()["spanId"] in {line[canonical.SPAN_ID] for line in lines}


def test_partial_success_in_the_request_encoding(tmp_path):
    out = tmp_path / "t.jsonl"
    bad = json_span(spanId="12")
    with servers(out) as s:
        status, _, body = _post(s.http_url, json_request([json_span(), bad]), "application/json")
        assert status == 200
        partial = orjson.loads(body)["partialSuccess"]
        assert partial["rejectedSpans"] == "1" and "span_id" in partial["errorMessage"]

        request = encode_spans(make_agent_spans())
        request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x00" * 8
        status, _, body = _post(s.http_url, request.SerializeToString())
        response = ExportTraceServiceResponse.FromString(body)
        assert status == 200 and response.partial_success.rejected_spans == 1
        assert "span_id" in response.partial_success.error_message

        response, call = _grpc_export(s.grpc_target, request.SerializeToString())
        assert call.code() == grpc.StatusCode.OK
        assert response.partial_success.rejected_spans == 1
    assert len(read_lines(out)) == 1 + 2 + 2


@pytest.mark.parametrize("body, content_type", [
    (b"\xff\xfe garbage", "application/x-protobuf"),
    (b"{not json", "application/json"),
    (b'{"resourceSpans": {"no": "list"}}', "application/json"),
])
def test_garbage_bodies_get_400_and_write_nothing(tmp_path, body, content_type):
    out = tmp_path / "t.jsonl"
    with servers(out) as s:
        status, headers, reply = _post(s.http_url, body, content_type)
        assert status == 400
        if content_type == "application/json":
            error = orjson.loads(reply)
            assert error["code"] == code_pb2.INVALID_ARGUMENT and error["message"]
        else:
            error = status_pb2.Status.FromString(reply)
            assert error.code == code_pb2.INVALID_ARGUMENT and "protobuf" in error.message
        assert _post(s.http_url, b"\x1f\x8b not gzip", content_type,
                     {"Content-Encoding": "gzip"})[0] == 400
    assert read_lines(out) == []


def test_grpc_garbage_is_invalid_argument(tmp_path):
    with servers(tmp_path / "t.jsonl") as s:
        with pytest.raises(grpc.RpcError) as info:
            _grpc_export(s.grpc_target, b"\xff\xfe garbage")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ExportTraceServiceRequest" in info.value.details()
    assert read_lines(tmp_path / "t.jsonl") == []


def test_unsupported_content_type_and_encoding_get_415(tmp_path):
    with servers(tmp_path / "t.jsonl") as s:
        assert _post(s.http_url, b"x", "text/plain")[0] == 415
        assert _post(s.http_url, _proto_body(), headers={"Content-Encoding": "br"})[0] == 415


def test_oversized_requests_get_413_and_resource_exhausted(tmp_path):
    with servers(tmp_path / "t.jsonl", max_body_bytes=64 * 1024) as s:
        big = json_request([json_span(name="x" * 100_000)])
        status, _, reply = _post(s.http_url, big, "application/json")
        assert status == 413 and orjson.loads(reply)["code"] == code_pb2.RESOURCE_EXHAUSTED
        bomb = gzip.compress(b" " * 2_000_000)  # 2 KB on the wire, 2 MB decompressed
        assert len(bomb) < 64 * 1024
        assert _post(s.http_url, bomb, "application/json", {"Content-Encoding": "gzip"})[0] == 413
        with pytest.raises(grpc.RpcError) as info:
            _grpc_export(s.grpc_target, b"\x0a" + b"\x00" * 100_000)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert read_lines(tmp_path / "t.jsonl") == []


def test_bearer_token_is_required_when_set(tmp_path):
    out = tmp_path / "t.jsonl"
    with servers(out, token="s3cret") as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            status, reply_headers, _ = _post(s.http_url, _proto_body(), headers=headers)
            assert status == 401 and reply_headers["WWW-Authenticate"] == "Bearer"
        with pytest.raises(grpc.RpcError) as info:
            _grpc_export(s.grpc_target, _proto_body(), metadata=(("authorization", "Bearer no"),))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        exporter = HttpExporter(endpoint=s.http_url, timeout=5)
        assert exporter.export(make_agent_spans()) == SpanExportResult.FAILURE
        exporter.shutdown()
        assert read_lines(out) == []
        assert _post(s.http_url, _proto_body(), headers={"Authorization": "Bearer s3cret"})[0] == 200
        _grpc_export(s.grpc_target, _proto_body(), metadata=(("authorization", "Bearer s3cret"),))
    assert len(read_lines(out)) == 6


def test_token_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_TOKEN", "from-env")
    with servers(tmp_path / "t.jsonl") as s:
        assert _post(s.http_url, _proto_body())[0] == 401
        assert _post(s.http_url, _proto_body(), headers={"Authorization": "Bearer from-env"})[0] == 200


class _StuckWriter:
    """A real JsonlWriter whose worker is held inside `encode` until released."""

    def __init__(self, path, max_queue_lines: int) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

        def encode(item):
            self.entered.set()
            self.release.wait(30)
            return None

        self.writer = JsonlWriter(path, max_queue_lines=max_queue_lines, flush_interval=0.01,
                                  encode=encode)
        self.writer.submit([object()])  # the worker takes it and blocks
        assert self.entered.wait(10)


def test_full_queue_gets_429_and_unavailable_with_retry_hints(tmp_path):
    stuck = _StuckWriter(tmp_path / "t.jsonl", max_queue_lines=4)
    assert stuck.writer.submit([b"{}\n"] * 4) is not None  # the queue is now full
    try:
        with servers(tmp_path / "t.jsonl", writer=stuck.writer, submit_timeout=0.05) as s:
            status, headers, reply = _post(s.http_url, _proto_body())
            assert status == 429 and headers["Retry-After"] == "1"
            assert status_pb2.Status.FromString(reply).code == code_pb2.UNAVAILABLE
            with pytest.raises(grpc.RpcError) as info:
                _grpc_export(s.grpc_target, _proto_body())
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            trailers = dict(info.value.trailing_metadata())
            retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
            assert retry.retry_delay.seconds == 1
            details = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
            assert details.code == code_pb2.UNAVAILABLE and details.details[0].Is(
                error_details_pb2.RetryInfo.DESCRIPTOR)
            stuck.release.set()
    finally:
        stuck.release.set()


def test_official_exporters_retry_a_throttled_export_until_it_is_written(tmp_path):
    out = tmp_path / "t.jsonl"
    stuck = _StuckWriter(out, max_queue_lines=4)
    stuck.writer.submit([b'{"filler": 1}\n'] * 4)  # full until released
    with servers(out, writer=stuck.writer, submit_timeout=0.01) as s:
        exporters = [GrpcExporter(endpoint=s.grpc_target, insecure=True, timeout=20),
                     HttpExporter(endpoint=s.http_url, timeout=20)]
        sent = [make_agent_spans() for _ in exporters]
        results = [None] * len(exporters)

        def export(i):
            results[i] = exporters[i].export(sent[i])

        threads = [threading.Thread(target=export, args=(i,)) for i in range(len(exporters))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while s.receiver.throttled < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.receiver.throttled >= 2  # both were refused at least once...
        stuck.release.set()
        for t in threads:
            t.join(30)
        assert results == [SpanExportResult.SUCCESS] * 2  # ...and retried until written
        for exporter in exporters:
            exporter.shutdown()
    written = {line.get(canonical.SPAN_ID) for line in read_lines(out)}
    assert {format(span.context.span_id, "016x") for spans in sent for span in spans} <= written


def test_a_write_that_does_not_finish_gets_503(tmp_path):
    stuck = _StuckWriter(tmp_path / "t.jsonl", max_queue_lines=1000)
    try:
        with servers(tmp_path / "t.jsonl", writer=stuck.writer, write_timeout=0.2) as s:
            status, headers, _ = _post(s.http_url, _proto_body())
            assert status == 503 and headers["Retry-After"] == "1"
            stuck.release.set()
    finally:
        stuck.release.set()


def test_unknown_path_is_404(tmp_path):
    with servers(tmp_path / "t.jsonl") as s:
        assert _post(s.http_url.replace("/v1/traces", "/v1/metrics"), b"")[0] == 404
