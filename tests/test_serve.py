"""`halo serve` as a real process: startup, live index, clean shutdown under load, one-line errors."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from halo_live.exporter import canonical
from tests._fault_helpers import ServeProcess
from tests._otlp_helpers import make_agent_spans, read_lines

def _halo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "halo_live", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path):
    serve = ServeProcess(f"{tmp_path}/")
    acked: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def send(exporter) -> None:
        try:
            while not stop.is_set():
                spans = make_agent_spans()
                if exporter.export(spans) != SpanExportResult.SUCCESS:
                    return  # the server is gone: stop sending
                acked.extend(format(s.context.span_id, "016x") for s in spans)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    exporters = [GrpcExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True, timeout=2),
                 HttpExporter(endpoint=serve.http_url, timeout=2)]
    threads = [threading.Thread(target=send, args=(e,)) for e in exporters]
    try:
        for t in threads:
            t.start()
        while len(acked) < 60:
            time.sleep(0.02)
        code, err = serve.terminate(), serve.stderr_text()
        started = time.monotonic()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        serve.kill()
    assert code == 0, err
    assert time.monotonic() - started < 15
    assert "stopped" in err and "Traceback" not in err
    written = {line[canonical.SPAN_ID] for line in read_lines(Path(serve.shard))}
    assert set(acked) <= written
    assert not errors
    for exporter in exporters:
        exporter.shutdown()


def test_a_sent_span_is_queryable_through_halo_tool(tmp_path):
    out = tmp_path / "live.jsonl"
    serve = ServeProcess(str(out), "--project-id", "proj-live")
    try:
        exporter = HttpExporter(endpoint=serve.http_url, timeout=5)
        spans = make_agent_spans()
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        trace_id = format(spans[0].context.trace_id, "032x")
        result = _halo("tool", "count_traces", str(out), "--args", json.dumps(
            {"filters": {"project_id": "proj-live"}}))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["result"]["total"] == 1
        viewed = _halo("tool", "view_trace", str(out), "--args", json.dumps({"trace_id": trace_id}))
        assert viewed.returncode == 0, viewed.stderr
        assert "execute_tool search" in viewed.stdout
    finally:
        code, err = serve.terminate(), serve.stderr_text()
    assert code == 0, err


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_the_live_index_follows_the_writes(tmp_path, mode):
    from halo_live.indexer import TraceIndex

    serve = ServeProcess(f"{tmp_path}/shards/", "--index", mode)
    try:
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True, timeout=5)
        spans = make_agent_spans()
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        trace_id = format(spans[0].context.trace_id, "032x")
        idx = TraceIndex.open(tmp_path / "shards")
        try:
            deadline = time.monotonic() + 20
            row = None
            while row is None and time.monotonic() < deadline:  # the server's own indexer, not ours
                with idx.snapshot() as snap:
                    row = snap.trace(trace_id)
                time.sleep(0.05)
        finally:
            idx.close()
        assert row is not None
        assert Path(serve.shard).parent == tmp_path / "shards"
        assert re.fullmatch(r"traces-serve-.+-\d+\.jsonl", Path(serve.shard).name)
    finally:
        code, err = serve.terminate(), serve.stderr_text()
    assert code == 0, err


def test_ctrl_c_flushes_and_exits_zero(tmp_path):
    serve = ServeProcess(str(tmp_path / "t.jsonl"), "--no-index")
    try:
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True, timeout=5)
        assert exporter.export(make_agent_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()
        serve.proc.send_signal(signal.SIGINT)
        serve.proc.wait(timeout=20)
        err = serve.stderr_text()
    finally:
        serve.kill()
    assert serve.proc.returncode == 0, err
    assert "Traceback" not in err and "1 request(s), 3 span(s) written" in err
    assert len(read_lines(tmp_path / "t.jsonl")) == 3


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag in ("--http-port", "--grpc-port"):
            other = "--grpc-port" if flag == "--http-port" else "--http-port"
            result = _halo("serve", "--out", str(tmp_path / "t.jsonl"), flag, str(port), other, "0",
                           "--no-index", timeout=30)
            assert result.returncode != 0
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("halo: error: cannot listen"), result.stderr
            assert str(port) in lines[0]


@pytest.mark.parametrize("out", ["missing-dir/t.jsonl", "a-file.jsonl/nested.jsonl"])
def test_bad_out_path_is_one_clear_line(tmp_path, out):
    (tmp_path / "a-file.jsonl").write_text("")
    result = _halo("serve", "--out", str(tmp_path / out), "--grpc-port", "0", "--http-port", "0",
                   "--no-index", timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("halo: error: cannot write"), result.stderr


def test_token_from_flag_is_enforced(tmp_path):
    serve = ServeProcess(str(tmp_path / "t.jsonl"), "--token", "tok", "--no-index", "--fsync", "batch")
    try:
        spans = make_agent_spans()
        assert HttpExporter(endpoint=serve.http_url, timeout=3).export(spans) == SpanExportResult.FAILURE
        good = HttpExporter(endpoint=serve.http_url, timeout=3, headers={"Authorization": "Bearer tok"})
        assert good.export(spans) == SpanExportResult.SUCCESS
    finally:
        code = serve.terminate()
    assert code == 0
    assert len(read_lines(tmp_path / "t.jsonl")) == 3


@pytest.mark.parametrize("policy", ["never", "batch", "always"])
def test_every_fsync_policy_writes_what_it_acknowledged(tmp_path, policy):
    serve = ServeProcess(str(tmp_path / "t.jsonl"), "--no-index", "--fsync", policy)
    try:
        spans = make_agent_spans()
        assert GrpcExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True,
                            timeout=5).export(spans) == SpanExportResult.SUCCESS
        assert HttpExporter(endpoint=serve.http_url, timeout=5).export(spans) == SpanExportResult.SUCCESS
        assert len(read_lines(tmp_path / "t.jsonl")) == 6  # success is answered after the write
    finally:
        code = serve.terminate()
    assert code == 0


def test_help_lists_the_options():
    result = _halo("serve", "--help")
    assert result.returncode == 0
    for flag in ("--out", "--grpc-port", "--http-port", "--host", "--project-id", "--token",
                 "--fsync", "--max-body-mb"):
        assert flag in result.stdout
