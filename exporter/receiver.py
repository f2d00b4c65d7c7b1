"""What the OTLP/gRPC and OTLP/HTTP endpoints share.

`Receiver` checks the bearer token, converts a request body to canonical
lines, hands them to the `JsonlWriter` and waits until they are written:
success is answered only then, so an acknowledged span survives a crash of
the server. When the writer's queue stays full for `submit_timeout` the
request is refused as retryable (HTTP 429 / gRPC UNAVAILABLE) instead of
buffered without bound, and past `max_inflight_bytes` of requests being
handled at once a new one is refused the same way (`reserve`), which bounds
the server's memory. The transports only map `Outcome`s to their codes.

An LLM/TOOL span whose agent span has not arrived yet is held (at most
`agent_wait` seconds) so its line can carry the agent's name
(`halo_live.exporter.lineage`). It is acknowledged only once it is in the held
journal beside the trace file (`halo_live.exporter.held_journal`), so a crash
loses none: the next server to start writes what a dead one left held.
`close()` writes what is held.
"""

from __future__ import annotations

import enum
import hmac
import logging
import os
import threading
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from halo_live.exporter import config
from halo_live.exporter import held_journal, otlp_logs
from halo_live.exporter.lineage import AgentLineage
from halo_live.exporter.otlp_convert import Conversion, InvalidRequest, from_protobuf
from halo_live.exporter.receiver_json import from_json
from halo_live.exporter.writer import JsonlWriter

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # gRPC's default is 4 MiB, the Collector's HTTP 20 MiB
DEFAULT_SUBMIT_TIMEOUT = 0.25  # absorb a short burst before refusing
DEFAULT_WRITE_TIMEOUT = 30.0  # a write slower than this is reported as unavailable
# Request bytes being decoded, converted or written at once, like the Collector's memory
# limiter: past it a request is refused as retryable before its body is even read (HTTP).
DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024
RETRY_AFTER_SECONDS = 1


class Status(enum.Enum):
    OK = "ok"  # written (possibly with rejected spans)
    INVALID = "invalid"  # the request cannot be decoded: nothing written
    THROTTLED = "throttled"  # writer queue full: retry later
    UNAVAILABLE = "unavailable"  # write failed or timed out, or shutting down: retry later


@dataclass
class Outcome:
    """The result of one export request, transport-neutral."""

    status: Status
    accepted: int = 0
    rejected: int = 0
    message: str = ""


def export_response(outcome: Outcome) -> ExportTraceServiceResponse:
    """The protobuf answer to a written request, with `partial_success` if spans were rejected."""
    response = ExportTraceServiceResponse()
    if outcome.rejected:
        response.partial_success.rejected_spans = outcome.rejected
        response.partial_success.error_message = outcome.message
    return response


def export_logs_response(outcome: Outcome) -> ExportLogsServiceResponse:
    """The protobuf answer to a written logs request, with `partial_success` if records were rejected."""
    response = ExportLogsServiceResponse()
    if outcome.rejected:
        response.partial_success.rejected_log_records = outcome.rejected
        response.partial_success.error_message = outcome.message
    return response


class Receiver:
    """Auth, conversion and the writer handoff of `halo serve`'s endpoints.

    `token`: the bearer token required of every request (argument, else
    `$HALO_TOKEN`, else none). `project_id`: `inference.project_id` for spans
    whose resource does not set one. `agent_wait`: seconds an LLM/TOOL span may
    be held for its agent's span (0: never; see the module docstring); spans a
    dead server left held beside the trace file are written at construction
    (`recovered` counts them).
    `logs_path`: where OTLP log records go (`halo_live.exporter.otlp_logs`;
    None: `/v1/logs` is refused). Thread-safe: both servers call `export_*` from their worker threads.
    """

    def __init__(
        self,
        writer: JsonlWriter,
        *,
        project_id: str = "",
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        submit_timeout: float = DEFAULT_SUBMIT_TIMEOUT,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        agent_wait: float = config.DEFAULT_AGENT_WAIT,
        logs_path: str | os.PathLike[str] | None = None,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
    ) -> None:
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be > 0, not {max_body_bytes!r}")
        if max_inflight_bytes <= 0:
            raise ValueError(f"max_inflight_bytes must be > 0, not {max_inflight_bytes!r}")
        self.max_inflight_bytes = max_inflight_bytes
        self._inflight = 0
        self.writer = writer
        self.project_id = project_id or ""
        self.token = config.setting(token, config.HALO_TOKEN, "") or ""
        self.max_body_bytes = max_body_bytes
        self.submit_timeout = submit_timeout
        self.write_timeout = write_timeout
        self._lock = threading.Lock()
        # Remembers spans across requests, so a span's agent is found in an earlier one.
        self.lineage = AgentLineage(self._release_held, wait=agent_wait)
        self.journal: held_journal.HeldJournal | None = None
        self.recovered = 0
        if agent_wait > 0:
            self.recovered = held_journal.recover(writer.path, self._write_to)
            self.journal = held_journal.HeldJournal(held_journal.journal_path_for(writer.path),
                                                    sync=writer.fsync != "never")
        self.span_events = otlp_logs.SpanEvents()  # GenAI log events waiting for their span
        self.logs_path = logs_path
        self._logs_writer: JsonlWriter | None = None  # opened by the first logs request
        self.logs_accepted = 0
        self._closing = False
        self.requests = 0
        self.spans_accepted = 0
        self.spans_rejected = 0
        self.throttled = 0

    # --- auth -------------------------------------------------------------------------------

    def authorized(self, authorization: str | None) -> bool:
        """True if no token is required or `authorization` is `Bearer <token>`."""
        if not self.token:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self.token.encode())

    # --- memory limiter -------------------------------------------------------------------

    def reserve(self, nbytes: int) -> bool:
        """Count `nbytes` of a request as in flight; False (refuse it, retryable) past the budget.

        A request alone is always admitted (it is bounded by `max_body_bytes`), so a
        large one is never refused forever.
        """
        with self._lock:
            if self._inflight and self._inflight + nbytes > self.max_inflight_bytes:
                self.throttled += 1
                return False
            self._inflight += nbytes
            return True

    def release(self, nbytes: int) -> None:
        """Return what `reserve` counted once the request is answered."""
        with self._lock:
            self._inflight -= nbytes

    # --- export -----------------------------------------------------------------------------

    def export_protobuf(self, body: bytes) -> Outcome:
        """Convert and write a serialized `ExportTraceServiceRequest`."""
        return self._export(body, from_protobuf)

    def export_json(self, body: bytes) -> Outcome:
        """Convert and write an OTLP/JSON `ExportTraceServiceRequest`."""
        return self._export(body, from_json)

    def export_logs_protobuf(self, body: bytes) -> Outcome:
        """Write a serialized `ExportLogsServiceRequest`; keep its GenAI events for their spans."""
        return self._export_logs(body, otlp_logs.from_protobuf)

    def export_logs_json(self, body: bytes) -> Outcome:
        """Write an OTLP/JSON `ExportLogsServiceRequest`; keep its GenAI events for their spans."""
        return self._export_logs(body, otlp_logs.from_json)

    def close(self) -> None:
        """Refuse new requests (retryable) from now on; write the spans held for their agent."""
        self._closing = True
        self.lineage.close()
        if self.journal is not None:
            self.journal.close(remove=True)
            self.journal = None
        if self._logs_writer is not None:
            self._logs_writer.shutdown(DEFAULT_WRITE_TIMEOUT)

    def _export_logs(self, body: bytes, convert) -> Outcome:
        if self._closing:
            return Outcome(Status.UNAVAILABLE, message="the server is shutting down")
        if self.logs_path is None:
            return Outcome(Status.INVALID, message="this server keeps no logs (no logs path)")
        try:
            conversion: otlp_logs.LogsConversion = convert(body)
        except InvalidRequest as exc:
            return Outcome(Status.INVALID, message=str(exc))
        with self._lock:
            if self._logs_writer is None:
                self._logs_writer = JsonlWriter(self.logs_path, fsync=self.writer.fsync)
        outcome = self.write(conversion.lines, self._logs_writer)
        outcome.rejected = conversion.rejected
        if outcome.status is Status.OK:
            outcome.message = conversion.error_message
            # An event whose span was already written stays in the logs file only.
            self.span_events.add(e for e in conversion.events if not self.lineage.seen(e[0], e[1]))
        with self._lock:
            self.logs_accepted += outcome.accepted
        return outcome

    def _release_held(self, lines: list[bytes]) -> None:
        """Write lines the lineage held (already acknowledged), then clear them from the journal."""
        ticket = self.writer.submit(lines)
        if ticket is None or not self.writer.wait(ticket, timeout=self.write_timeout):
            return  # still in the journal: the next start writes them
        if self.journal is not None:
            self.journal.released(lines)

    def _write_to(self, path, lines: list[bytes]) -> None:
        """Write `lines` to the trace file at `path` now (recovery of a dead server's held spans)."""
        if os.path.abspath(path) == os.path.abspath(self.writer.path):
            outcome = self.write(lines)
        else:
            other = JsonlWriter(path, fsync=self.writer.fsync)
            try:
                outcome = self.write(lines, other)
            finally:
                other.shutdown(self.write_timeout)
        if outcome.status is not Status.OK:
            raise OSError(f"cannot write the held spans left in {path}: {outcome.message}")

    def _export(self, body: bytes, convert) -> Outcome:
        if self._closing:
            return Outcome(Status.UNAVAILABLE, message="the server is shutting down")
        try:
            conversion: Conversion = convert(body, project_id=self.project_id, lineage=self.lineage,
                                             span_events=self.span_events)
        except InvalidRequest as exc:
            with self._lock:
                self.requests += 1
            return Outcome(Status.INVALID, message=str(exc))
        if conversion.held_lines and self.journal is not None:
            try:
                self.journal.record(conversion.held_lines)
            except OSError as exc:
                with self._lock:
                    self.requests += 1
                return Outcome(Status.UNAVAILABLE, message=f"cannot journal held spans: {exc}")
        outcome = self.write(conversion.lines)
        outcome.rejected = conversion.rejected
        if outcome.status is Status.OK:
            outcome.accepted += len(conversion.held_lines) - len(conversion.settled)  # counted when held
            outcome.message = conversion.error_message
            if conversion.settled and self.journal is not None:
                self.journal.released(conversion.settled)
        elif conversion.settled:
            self._release_held(conversion.settled)  # no longer held: write them on their own
        with self._lock:
            self.requests += 1
            self.spans_accepted += outcome.accepted
            self.spans_rejected += conversion.rejected
            self.throttled += outcome.status is Status.THROTTLED
        return outcome

    def write(self, lines: list[bytes], writer: JsonlWriter | None = None) -> Outcome:
        """Hand `lines` to the writer (the trace file's by default) and wait until they are written."""
        if not lines:
            return Outcome(Status.OK)
        writer = writer or self.writer
        ticket = writer.submit(lines, timeout=self.submit_timeout)
        if ticket is None:
            return Outcome(Status.THROTTLED, message="the trace writer's queue is full; retry later")
        if not writer.wait(ticket, timeout=self.write_timeout):
            # The lines may still be written later; the client retries and the
            # indexer tolerates the duplicate span (same ids, same content).
            return Outcome(Status.UNAVAILABLE, message="writing the trace file failed or timed out")
        return Outcome(Status.OK, accepted=len(lines))

    def stats(self) -> str:
        """One line of counters for the shutdown message."""
        logs = f", {self.logs_accepted} log record(s) written" if self.logs_accepted else ""
        return (f"{self.requests} request(s), {self.spans_accepted} span(s) written, "
                f"{self.spans_rejected} rejected, {self.throttled} throttled request(s){logs}")
