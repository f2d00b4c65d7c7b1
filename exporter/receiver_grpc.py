"""OTLP/gRPC: the trace and logs services' `Export` on grpcio.

The request arrives as raw bytes (the servicer decodes it itself), so a body
that is not an `ExportTraceServiceRequest` is answered INVALID_ARGUMENT
rather than grpcio's generic INTERNAL. grpcio decompresses gzip requests and
enforces the size limit (RESOURCE_EXHAUSTED) on its own. A full writer queue
gives UNAVAILABLE with a RetryInfo, which the OTel exporters retry.
"""

from __future__ import annotations

from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.any_pb2 import Any as AnyProto
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from halo_live.exporter.receiver import (
    RETRY_AFTER_SECONDS, Outcome, Receiver, Status, export_logs_response, export_response,
)

SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE_NAME = "opentelemetry.proto.collector.logs.v1.LogsService"
_RETRY_INFO_KEY = "google.rpc.retryinfo-bin"  # what opentelemetry-python's exporter reads
_STATUS_DETAILS_KEY = "grpc-status-details-bin"  # what the Collector and grpc-go read


def _retry_metadata(message: str) -> tuple[tuple[str, bytes], ...]:
    info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_SECONDS))
    detail = AnyProto()
    detail.Pack(info)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    return ((_RETRY_INFO_KEY, info.SerializeToString()),
            (_STATUS_DETAILS_KEY, status.SerializeToString()))


class TraceServiceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP trace service, writing through a `Receiver`."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def Export(self, request: bytes, context: grpc.ServicerContext):  # noqa: N802 (gRPC name)
        return export_response(self._outcome(self.receiver.export_protobuf, request, context))

    def ExportLogs(self, request: bytes, context: grpc.ServicerContext):  # noqa: N802
        return export_logs_response(self._outcome(self.receiver.export_logs_protobuf, request, context))

    def _outcome(self, export, request: bytes, context: grpc.ServicerContext) -> Outcome:
        metadata = dict(context.invocation_metadata())
        if not self.receiver.authorized(metadata.get("authorization")):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if not self.receiver.reserve(len(request)):
            context.set_trailing_metadata(_retry_metadata("at the memory bound; retry later"))
            context.abort(grpc.StatusCode.UNAVAILABLE,
                          "the server is at its memory bound for requests in flight; retry later")
        try:
            outcome = export(request)
        finally:
            self.receiver.release(len(request))
        if outcome.status is Status.INVALID:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, outcome.message)
        if outcome.status in (Status.THROTTLED, Status.UNAVAILABLE):
            context.set_trailing_metadata(_retry_metadata(outcome.message))
            context.abort(grpc.StatusCode.UNAVAILABLE, outcome.message)
        return outcome


def _handlers(servicer: TraceServiceServicer) -> list[grpc.GenericRpcHandler]:
    # Raw request bytes (no deserializer): we decode, so garbage is INVALID_ARGUMENT.
    return [
        grpc.method_handlers_generic_handler(SERVICE_NAME, {"Export": grpc.unary_unary_rpc_method_handler(
            servicer.Export, request_deserializer=None,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)}),
        grpc.method_handlers_generic_handler(LOGS_SERVICE_NAME, {"Export": grpc.unary_unary_rpc_method_handler(
            servicer.ExportLogs, request_deserializer=None,
            response_serializer=logs_service_pb2.ExportLogsServiceResponse.SerializeToString)}),
    ]


class GrpcReceiver:
    """A grpcio server for the OTLP trace service; `start()` binds, `stop(grace)` drains."""

    def __init__(self, receiver: Receiver, host: str = "127.0.0.1", port: int = 4317,
                 *, max_workers: int = 8) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self._executor = futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="halo-otlp-grpc")
        self._server = grpc.server(
            self._executor,
            handlers=_handlers(TraceServiceServicer(receiver)),
            options=[
                ("grpc.max_receive_message_length", receiver.max_body_bytes),
                ("grpc.so_reuseport", 0),  # a port in use must fail, not be shared
            ],
            # Requests beyond the workers wait in grpcio, read but not yet counted by the
            # receiver's memory bound; past this they get RESOURCE_EXHAUSTED (which OTLP
            # exporters retry). It bounds that waiting memory to max_workers * max body.
            maximum_concurrent_rpcs=max_workers * 2,
        )

    def start(self) -> int:
        """Bind and serve; returns the bound port. Raises OSError if the port is taken."""
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from None
        if not bound:
            raise OSError(f"cannot listen for OTLP/gRPC on {address} (in use?)")
        self.port = bound
        self._server.start()
        return bound

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new RPCs, let in-flight ones finish within `grace` seconds."""
        self._server.stop(grace).wait(grace + 1)
        self._executor.shutdown(wait=False)
