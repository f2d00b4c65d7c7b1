"""OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs` on aiohttp, protobuf and JSON on the same port.

Answers as the OTLP/HTTP specification asks: the response (and an error's
`google.rpc.Status`) in the request's encoding; 400 for a body that cannot
be decoded, 401 without the bearer token, 413 for an oversized body (also
after decompression, so a small gzip bomb is refused too), 415 for an
unknown content type or encoding, 429 (queue full, or past the memory
bound for requests in flight) / 503 (write failed or shutting down) with
`Retry-After`. gzip, deflate and zstd bodies are
decompressed here, with a bound, rather than by aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from concurrent import futures

import orjson
import zstandard
from aiohttp import web
from google.rpc import code_pb2, status_pb2

from halo_live.exporter.receiver import (
    RETRY_AFTER_SECONDS, Outcome, Receiver, Status, export_logs_response, export_response,
)

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPE = "application/json"


class _TooLarge(Exception):
    pass


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The decoded body; `_TooLarge` past `limit` bytes, ValueError if it does not decode."""
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        # gzip: wbits 16+; deflate: zlib-wrapped per RFC 9110, raw deflate tolerated.
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        attempts = (wbits,) if encoding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
        for bits in attempts:
            try:
                inflater = zlib.decompressobj(bits)
                out = inflater.decompress(body, limit + 1)
            except zlib.error as exc:
                error = exc
                continue
            if len(out) > limit:
                raise _TooLarge
            if not inflater.eof:
                raise ValueError(f"truncated {encoding} body")
            return out
        raise ValueError(f"body is not valid {encoding}: {error}")
    if encoding == "zstd":
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(body)
            out = reader.read(limit + 1)
        except zstandard.ZstdError as exc:
            raise ValueError(f"body is not valid zstd: {exc}") from None
        if len(out) > limit:
            raise _TooLarge
        return out
    raise LookupError(encoding)


def _status_body(is_json: bool, code: int, message: str) -> bytes:
    if is_json:
        return orjson.dumps({"code": code, "message": message})
    return status_pb2.Status(code=code, message=message).SerializeToString()


def _reply(is_json: bool, http_status: int, rpc_code: int, message: str,
           headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=http_status, body=_status_body(is_json, rpc_code, message),
                        content_type=JSON_TYPE if is_json else PROTOBUF_TYPES[0], headers=headers)


def _success(is_json: bool, outcome: Outcome, logs: bool = False) -> web.Response:
    if is_json:
        payload: dict = {}
        if outcome.rejected:
            payload["partialSuccess"] = {"rejectedLogRecords" if logs else "rejectedSpans": str(outcome.rejected),
                                         "errorMessage": outcome.message}
        return web.Response(body=orjson.dumps(payload), content_type=JSON_TYPE)
    response = export_logs_response(outcome) if logs else export_response(outcome)
    return web.Response(body=response.SerializeToString(), content_type=PROTOBUF_TYPES[0])


class HttpReceiver:
    """An aiohttp server for `POST /v1/traces` and `/v1/logs`, run on its own event-loop thread."""

    def __init__(self, receiver: Receiver, host: str = "127.0.0.1", port: int = 4318,
                 *, max_workers: int = 8, grace: float = 5.0) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self.grace = grace  # how long in-flight requests may take once stop() is called
        # Conversion and the wait for the writer block; they run off the event loop.
        self._executor = futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="halo-otlp-http")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application (also usable on its own, e.g. under another runner)."""
        # +1 so that a body of exactly the limit is read and the check below decides.
        app = web.Application(client_max_size=self.receiver.max_body_bytes + 1)
        app.router.add_post(TRACES_PATH, self._handle)
        app.router.add_post(LOGS_PATH, self._handle_logs)
        return app

    async def _handle_logs(self, request: web.Request) -> web.Response:
        return await self._handle(request, logs=True)

    async def _handle(self, request: web.Request, logs: bool = False) -> web.Response:
        content_type = request.content_type.lower()
        is_json = content_type == JSON_TYPE
        if not self.receiver.authorized(request.headers.get("Authorization")):
            return _reply(is_json, 401, code_pb2.UNAUTHENTICATED, "missing or wrong bearer token",
                          {"WWW-Authenticate": "Bearer"})
        if not is_json and content_type not in PROTOBUF_TYPES:
            return _reply(False, 415, code_pb2.INVALID_ARGUMENT,
                          f"unsupported Content-Type {content_type!r}; send "
                          f"{PROTOBUF_TYPES[0]} or {JSON_TYPE}")
        limit = self.receiver.max_body_bytes
        too_large = f"request body larger than {limit} bytes"
        if request.content_length is not None and request.content_length > limit:
            return _reply(is_json, 413, code_pb2.RESOURCE_EXHAUSTED, too_large)
        reserved = request.content_length if request.content_length is not None else limit
        if not self.receiver.reserve(reserved):
            return _reply(is_json, 429, code_pb2.UNAVAILABLE,
                          "the server is at its memory bound for requests in flight; retry later",
                          {"Retry-After": str(RETRY_AFTER_SECONDS)})
        try:
            return await self._read_and_export(request, is_json, logs, limit, too_large)
        finally:
            self.receiver.release(reserved)

    async def _read_and_export(self, request: web.Request, is_json: bool, logs: bool, limit: int,
                               too_large: str) -> web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _reply(is_json, 413, code_pb2.RESOURCE_EXHAUSTED, too_large)
        except ConnectionError:  # the client left (or we are closing) mid-body: nothing to answer
            return web.Response(status=400)
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        try:
            body = _decompress(raw, encoding, limit)
        except _TooLarge:
            return _reply(is_json, 413, code_pb2.RESOURCE_EXHAUSTED, f"decompressed {too_large}")
        except LookupError:
            return _reply(is_json, 415, code_pb2.INVALID_ARGUMENT,
                          f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or zstd")
        except ValueError as exc:
            return _reply(is_json, 400, code_pb2.INVALID_ARGUMENT, str(exc))
        if logs:
            export = self.receiver.export_logs_json if is_json else self.receiver.export_logs_protobuf
        else:
            export = self.receiver.export_json if is_json else self.receiver.export_protobuf
        outcome = await asyncio.get_running_loop().run_in_executor(self._executor, export, body)
        if outcome.status is Status.OK:
            return _success(is_json, outcome, logs)
        if outcome.status is Status.INVALID:
            return _reply(is_json, 400, code_pb2.INVALID_ARGUMENT, outcome.message)
        http_status = 429 if outcome.status is Status.THROTTLED else 503
        return _reply(is_json, http_status, code_pb2.UNAVAILABLE, outcome.message,
                      {"Retry-After": str(RETRY_AFTER_SECONDS)})

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> int:
        """Bind and serve on a background thread; returns the bound port (OSError if taken)."""
        ready: futures.Future[int] = futures.Future()
        self._loop = asyncio.new_event_loop()

        async def serve() -> int:
            self._runner = web.AppRunner(self.app(), access_log=None, auto_decompress=False,
                                         shutdown_timeout=self.grace)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, reuse_port=False)
            try:
                await site.start()
            except OSError:
                await self._runner.cleanup()
                raise
            return self._runner.addresses[0][1]

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                ready.set_result(self._loop.run_until_complete(serve()))
            except BaseException as exc:  # handed to start()'s caller, which reports it
                ready.set_exception(exc)
                return
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="halo-otlp-http-loop", daemon=True)
        self._thread.start()
        try:
            self.port = ready.result()
        except OSError as exc:
            self._thread.join()
            self._loop.close()
            raise OSError(f"cannot listen for OTLP/HTTP on {self.host}:{self.port}: "
                          f"{exc.strerror or exc}") from None
        return self.port

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish within `grace`, stop the loop."""
        grace = self.grace if grace is None else grace
        loop, runner = self._loop, self._runner
        if loop is None or self._thread is None:
            return
        if runner is not None:
            cleanup = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                cleanup.result(grace + 1)
            except (futures.TimeoutError, RuntimeError) as exc:
                # The loop is stopped below either way, and the writer still flushes after us.
                logger.warning("halo serve: OTLP/HTTP did not stop cleanly within %.1f s: %r",
                               grace, exc)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(grace + 1)
        self._executor.shutdown(wait=True)
        if not self._thread.is_alive():
            loop.close()
        self._loop = None
