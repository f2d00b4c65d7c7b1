"""Fault: the disk is full (a file-size limit, `RLIMIT_FSIZE`, set on the writing process).

The receiver answers retryable errors and acknowledges nothing it did not
write; the SDK processor counts what it could not write, says so once, never
raises; both write again by themselves once there is room.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import grpc
import orjson

from tests._fault_helpers import GrpcClient, ServeProcess, otlp_request, post_http, span_ids, span_ids_on_disk


def test_serve_refuses_retryably_when_the_disk_is_full_and_recovers(tmp_path):
    out = tmp_path / "traces.jsonl"
    serve = ServeProcess(out, "--no-index", "--agent-wait", "0")
    client = GrpcClient(serve.grpc_target)
    try:
        assert post_http(serve.http_url, otlp_request(1))[0] == 200
        size = out.stat().st_size
        _, hard = resource.prlimit(serve.pid, resource.RLIMIT_FSIZE)
        # Room for part of a line: the writer must cut the partial batch off again.
        resource.prlimit(serve.pid, resource.RLIMIT_FSIZE, (size + 100, hard))

        status, headers, _ = post_http(serve.http_url, otlp_request(2))
        assert status == 503 and headers.get("Retry-After") == "1"
        code, trailers = client.export(otlp_request(3))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "google.rpc.retryinfo-bin" in trailers
        assert out.stat().st_size == size  # nothing of the refused requests, not even half a line

        resource.prlimit(serve.pid, resource.RLIMIT_FSIZE, (hard, hard))  # space is back
        assert post_http(serve.http_url, otlp_request(2))[0] == 200  # the client's retry
        assert client.export(otlp_request(3))[0] == grpc.StatusCode.OK
    finally:
        client.close()
        code = serve.terminate()
    err = serve.stderr_text()
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("cannot write") == 1 and err.count(f"writing {out} again") == 1, err
    on_disk = span_ids_on_disk(out)
    assert sorted(on_disk) == sorted(span_ids(1, 10) + span_ids(2, 10) + span_ids(3, 10))


CHILD = textwrap.dedent("""
    import json, resource, sys
    from agents import custom_span, trace
    from halo_live import setup_tracing

    processor = setup_tracing(path=sys.argv[1], service_name="disk-full", flush_interval=0.05)

    def run(tag, n=5):
        for i in range(n):
            with trace(f"{tag} {i}"):
                with custom_span(f"{tag} step", data={"i": i}):
                    pass

    run("before")
    first = processor.force_flush(10)
    import os
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 50, hard))
    run("full")
    during = processor.force_flush(10)
    dropped = processor.dropped
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    run("after")
    after = processor.force_flush(10)
    print(json.dumps({"first": first, "during": during, "after": after, "dropped": dropped}))
""")


def test_sdk_processor_counts_unwritten_spans_says_so_once_and_recovers(tmp_path):
    out = tmp_path / "sdk.jsonl"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"first": True, "during": False, "after": True, "dropped": 5}
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("cannot write") == 1, proc.stderr
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]  # whole lines only
    names = sorted(line["name"] for line in lines)
    assert names.count("custom.before step") == 5 and names.count("custom.after step") == 5
    assert "custom.full step" not in names


OTEL_CHILD = textwrap.dedent("""
    import json, os, resource, sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from halo_live import HaloSpanExporter

    exporter = HaloSpanExporter(sys.argv[1], agent_wait=0)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("disk-full")

    def run(tag, n=3):
        for i in range(n):
            with tracer.start_as_current_span(f"{tag} {i}"):
                pass

    run("before")
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 50, hard))
    run("full")
    dropped = exporter.dropped
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    run("after")
    provider.shutdown()
    print(json.dumps({"dropped": dropped}))
""")


def test_otel_exporter_reports_failure_without_raising_and_recovers(tmp_path):
    out = tmp_path / "otel.jsonl"
    proc = subprocess.run([sys.executable, "-c", OTEL_CHILD, str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"dropped": 3}
    assert "Traceback" not in proc.stderr and proc.stderr.count("cannot write") == 1, proc.stderr
    names = sorted(orjson.loads(line)["name"] for line in out.read_bytes().splitlines())
    assert names == ["after 0", "after 1", "after 2", "before 0", "before 1", "before 2"]
