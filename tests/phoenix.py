"""A real Arize Phoenix server for the import tests, in a venv of its own.

`arize-phoenix` pins its own opentelemetry, grpcio and protobuf versions, so
it never shares our environment: the venv is built once per machine (about a
minute; `$HALO_PHOENIX_VENV` or `~/.cache/halo-live/phoenix-venv-<version>`)
and each server runs as a child process on loopback, on free ports, with a
SQLite database in a temporary folder. Where the venv cannot be built (no
registry), the tests using it are skipped with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from halo_live.exporter import canonical

PHOENIX_VERSION = "20.26.1"
VENV_ENV = "HALO_PHOENIX_VENV"


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "halo-live" / f"phoenix-venv-{PHOENIX_VERSION}"
    return Path(os.environ.get(VENV_ENV, default))


def ensure_phoenix() -> Path:
    """Build the Phoenix venv if needed; returns its python. Raises RuntimeError if impossible."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    marker = venv / ".halo-phoenix-ready"
    if marker.exists() and python.exists():
        return python
    for step in ([sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  f"arize-phoenix=={PHOENIX_VERSION}"]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            raise RuntimeError(f"cannot build the Phoenix venv ({' '.join(step[:4])}): "
                               f"{done.stderr.strip()[-500:]}")
    marker.write_text(f"arize-phoenix=={PHOENIX_VERSION}")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PhoenixServer:
    """`python -m phoenix.server.main serve` on loopback; `url` once it answers."""

    def __init__(self, python: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.python, self.workdir, self.extra_env = python, workdir, env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> PhoenixServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
        env.update(PHOENIX_WORKING_DIR=str(self.workdir), PHOENIX_HOST="127.0.0.1",
                   PHOENIX_PORT=str(self.port), PHOENIX_GRPC_PORT=str(free_port()),
                   PHOENIX_TELEMETRY_ENABLED="false", DO_NOT_TRACK="1", **self.extra_env)
        log = open(self.workdir / "phoenix.log", "wb")
        self.proc = subprocess.Popen([str(self.python), "-m", "phoenix.server.main", "serve"],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Phoenix exited: {(self.workdir / 'phoenix.log').read_text()[-1000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/projects", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers (401 with auth on)
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("Phoenix did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def send(self, lines: Iterable[dict[str, Any]], project: str) -> None:
        """POST canonical lines to Phoenix's OTLP/HTTP endpoint as one protobuf request."""
        body = to_otlp(lines, project).SerializeToString()
        request = urllib.request.Request(f"{self.url}/v1/traces", data=body, method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200

    def span_count(self, project: str) -> int:
        import json

        count, cursor = 0, None
        while True:
            url = f"{self.url}/v1/projects/{project}/spans?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    page = json.load(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return 0
                raise
            count += len(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return count

    def wait_for_spans(self, project: str, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.span_count(project) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"Phoenix holds {self.span_count(project)} of {count} spans")
            time.sleep(0.2)


def relabel(lines: list[dict[str, Any]], salt: str) -> list[dict[str, Any]]:
    """The same spans under fresh ids (Phoenix keeps a span id once across all projects)."""
    import hashlib

    def new(value: str) -> str:
        return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()[:len(value)] if value else ""

    return [{**line, "trace_id": new(line["trace_id"]), "span_id": new(line["span_id"]),
             "parent_span_id": new(line["parent_span_id"])} for line in lines]


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(_attrs(value))
        return out
    return AnyValue(string_value=str(value))


def _attrs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attrs.items() if v is not None]


def to_otlp(lines: Iterable[dict[str, Any]], project: str) -> ExportTraceServiceRequest:
    """Canonical lines as an OTLP request, one resource per line's resource, for `project`."""
    request = ExportTraceServiceRequest()
    for line in lines:
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(_attrs({**line["resource"]["attributes"],
                                              "openinference.project.name": project}))
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = line["scope"]["name"], line["scope"]["version"]
        span = ss.spans.add()
        span.trace_id = bytes.fromhex(line["trace_id"])
        span.span_id = bytes.fromhex(line["span_id"])
        if line["parent_span_id"]:
            span.parent_span_id = bytes.fromhex(line["parent_span_id"])
        span.name = line["name"]
        span.kind = canonical.SPAN_KINDS.index(line["kind"])
        span.start_time_unix_nano = canonical.ns_from_iso(line["start_time"])
        span.end_time_unix_nano = canonical.ns_from_iso(line["end_time"])
        span.attributes.extend(_attrs(line["attributes"]))
        for event in line.get("events", []):
            e = span.events.add()
            e.name, e.time_unix_nano = event["name"], canonical.ns_from_iso(event["time"])
            e.attributes.extend(_attrs(event["attributes"]))
        span.status.CopyFrom(Status(code=canonical.STATUS_CODES.index(line["status"]["code"]),
                                    message=line["status"]["message"]))
    return request


__all__ = ["PhoenixServer", "ensure_phoenix", "to_otlp"]
