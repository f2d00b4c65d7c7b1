"""Helpers of the fault suite and `bench/soak.py`: a real `halo serve`, raw OTLP requests with known ids.

Requests are built here (not by the OTel SDK) so that every span id is known
before sending: a client logs the ids of each acknowledged request, and the
checks compare that log with the lines on disk.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import orjson

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
STARTUP_TIMEOUT = 60


class ServeProcess:
    """`python -m halo_live serve --out OUT` on free ports; stderr goes to a file (`stderr_text()`)."""

    def __init__(self, out: str | Path, *extra: str, env: dict | None = None,
                 stderr_path: Path | None = None, fixed_ports: tuple[str, str] = ("0", "0")) -> None:
        self.out = str(out)
        self.stderr_path = Path(stderr_path or f"{str(out).rstrip('/')}.serve-{time.monotonic_ns()}.err")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "halo_live", "serve", "--out", self.out, "--grpc-port", fixed_ports[0],
             "--http-port", fixed_ports[1], *extra],
            stdout=subprocess.PIPE, stderr=self._err, text=True, env={**os.environ, **(env or {})},
        )
        self.pid = self.proc.pid
        self.shard = ""
        self.grpc_port = self.http_port = 0
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for line in self.proc.stdout:  # type: ignore[union-attr]
            if m := re.search(r"writing (\S+)", line):
                self.shard = m.group(1)
            if m := re.search(r"gRPC listening on \S+:(\d+)", line):
                self.grpc_port = int(m.group(1))
            if m := re.search(r"HTTP listening on http://\S+:(\d+)/", line):
                self.http_port = int(m.group(1))
            if "ready" in line or time.monotonic() > deadline:
                break
        if not (self.grpc_port and self.http_port):
            self.kill()
            raise RuntimeError(f"halo serve did not start: {self.stderr_text()}")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stderr_text(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        finally:
            self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (if still running) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


def span_ids(tag: int, spans: int) -> list[str]:
    """The span ids of request `tag` (16 hex digits each, unique across tags)."""
    return [f"{tag:08x}{i:08x}" for i in range(spans)]


def otlp_request(tag: int, spans: int = 10, *, attr_bytes: int = 200, trace_spans: int = 0) -> bytes:
    """A serialized ExportTraceServiceRequest whose span ids are `span_ids(tag, spans)`.

    The spans form traces of `trace_spans` spans (0: one trace per request),
    with an attribute of `attr_bytes` deterministic characters each.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="fault-agent")))
    ss = rs.scope_spans.add()
    ss.scope.name = "fault-suite"
    payload = KeyValue(key="payload", value=AnyValue(string_value="x" * attr_bytes))
    per_trace = trace_spans or spans
    ids = [bytes.fromhex(h) for h in span_ids(tag, spans)]
    for i, span_id in enumerate(ids):
        span = ss.spans.add(trace_id=bytes.fromhex(f"{tag:024x}{i // per_trace:08x}"), span_id=span_id,
                            name=f"step {i % 7}", kind=1,
                            start_time_unix_nano=1_700_000_000_000_000_000 + tag * 1_000_000 + i)
        if i % per_trace:
            span.parent_span_id = ids[i - i % per_trace]
        span.end_time_unix_nano = span.start_time_unix_nano + 1000
        span.attributes.append(payload)
    return req.SerializeToString()


def post_http(url: str, body: bytes, *, timeout: float = 30,
              content_type: str = "application/x-protobuf") -> tuple[int, dict, bytes]:
    """POST one OTLP/HTTP body: (status, headers, body); never raises on an HTTP error status."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class GrpcClient:
    """A raw OTLP/gRPC client: sends serialized requests, returns the status code and trailers."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 256 << 20)])
        self._call = self.channel.unary_unary(EXPORT_METHOD, request_serializer=None,
                                              response_deserializer=None)

    def export(self, body: bytes, timeout: float = 30) -> tuple[grpc.StatusCode, dict]:
        try:
            _, call = self._call.with_call(body, timeout=timeout)
            return call.code(), dict(call.trailing_metadata() or ())
        except grpc.RpcError as exc:
            return exc.code(), dict(exc.trailing_metadata() or ())

    def close(self) -> None:
        self.channel.close()


def span_ids_on_disk(path: str | Path) -> list[str]:
    """Span ids of every line of a trace file (or of every *.jsonl in a folder), in order."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    ids: list[str] = []
    for file in files:
        if not file.exists():
            continue
        for line in file.read_bytes().splitlines():
            if line.strip():
                ids.append(orjson.loads(line)["span_id"])
    return ids


# Run in a small Python of its own: Linux counts a process's pages before its `exec` in
# its peak RSS, so a child forked straight from a big test process would start at its size.
_PEAK_RSS = ("import resource, subprocess, sys\n"
             "with open(sys.argv[1], 'wb') as out:\n"
             "    code = subprocess.call(sys.argv[2:], stdout=out)\n"
             "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def tool_peak_rss(name: str, path: str | Path, arguments: dict) -> tuple[dict, int]:
    """`halo tool NAME PATH --args ...` in a child process: its JSON answer and its peak RSS in bytes."""
    out_path = Path(f"{path}.tool-{time.monotonic_ns()}.json")
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(out_path), sys.executable, "-m", "halo_live",
                           "tool", name, str(path), "--args", orjson.dumps(arguments).decode()],
                          capture_output=True, text=True, check=True)
    code, peak_kb = map(int, done.stdout.split())
    assert code == 0, out_path.read_text(errors="replace")
    return orjson.loads(out_path.read_bytes()), peak_kb * 1024  # Linux reports kilobytes


LIVE_ONLY = ("last_span_arrival", "index_lag_bytes", "in_progress_trace_count", "spans_indexed")


def answers(path: str | Path, index_dir: str | Path) -> dict:
    """What the trace tools answer about `path` through the index in `index_dir` (caught up first):
    the overview (minus its live-only facts), the count, every trace's row and every trace's view."""
    from halo_live.engine.tools import open_store, run_tool

    store = open_store(path, index_dir)
    try:
        overview = run_tool(store, "get_dataset_overview", {})
        for key in LIVE_ONLY:
            overview.get("result", {}).pop(key, None)
        traces: list = []
        while True:
            page = run_tool(store, "query_traces", {"limit": 500, "offset": len(traces)})
            rows = page["result"]["traces"]
            traces.extend(rows)
            if not rows or len(traces) >= page["result"]["total"]:
                break
        views = {row["trace_id"]: run_tool(store, "view_trace", {"trace_id": row["trace_id"]})
                 for row in traces}
        return {"overview": overview, "count": run_tool(store, "count_traces", {}),
                "traces": traces, "views": views}
    finally:
        store.close()
