"""`setup_tracing()`: write every OpenAI Agents SDK span as a canonical HALO line.

    from halo_live.exporter import setup_tracing
    processor = setup_tracing(service_name="my-harness", project_id="bench-1")
    ... Runner.run(...) ...
    processor.shutdown()   # optional: an interpreter-exit hook flushes too

The processor replaces the SDK's default OpenAI uploader (through
`set_trace_processors`, so tracing stays enabled) unless
`keep_openai_exporter=True`. On the agent's thread it only records the
enclosing agent at span start and enqueues the finished span; conversion and
encoding run on the writer's thread. What is open (traces and spans started,
not yet ended) goes to a sidecar beside the shard (`open_spans.py`), never into
the canonical file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from agents.tracing import Span, Trace, TracingProcessor, set_trace_processors
from agents.tracing.span_data import AgentSpanData, ResponseSpanData

from halo_live.exporter import canonical, config
from halo_live.exporter.open_spans import OpenSpanRecorder
from halo_live.exporter.sdk_spans import (
    OBSERVATION_KIND_BY_TYPE, ExportContext, TraceInfo, sdk_id, span_name, span_to_line, span_type_of,
)
from halo_live.exporter.writer import JsonlWriter

logger = logging.getLogger(__name__)


def new_run_id() -> str:
    """A fresh short id for one process's run (12 hex digits)."""
    return uuid.uuid4().hex[:12]


# The SDK's Responses model opens its span inside these methods, with the model's name on
# `self.model`; with the SDK's sensitive data off, the span itself never learns it.
_MODEL_CALLS = frozenset({"_fetch_response", "get_response", "stream_response"})
_MODEL_FRAMES = 12


def calling_model(frame: Any) -> str | None:
    """The model name of the SDK model object whose call opened the span at `frame`, if any.

    Walks up a few frames of the caller's stack (only for Responses spans, once per model
    call); the model name is not sensitive data, and an LLM span without it can't be
    filtered by model.
    """
    for _ in range(_MODEL_FRAMES):
        if frame is None:
            return None
        if frame.f_code.co_name in _MODEL_CALLS:
            model = getattr(frame.f_locals.get("self"), "model", None)
            if isinstance(model, str) and model:
                return model
        frame = frame.f_back
    return None


class HaloTracingProcessor(TracingProcessor):
    """An Agents SDK `TracingProcessor` that appends canonical lines via a `JsonlWriter`.

    Never raises into the agent: a failure is logged once and counted in `dropped`.
    """

    def __init__(
        self,
        writer: JsonlWriter,
        *,
        ctx: ExportContext,
        owns_writer: bool = True,
        open_spans: bool = True,
    ) -> None:
        self.writer = writer
        self.ctx = ctx
        self._owns_writer = owns_writer
        self.open_spans: OpenSpanRecorder | None = None
        if open_spans:
            self.open_spans = OpenSpanRecorder(
                writer.path, describe=self._describe_open, trace_id_of=lambda t: sdk_id(t, "trace_"),
                service=str(ctx.resource_attributes.get(canonical.SERVICE_NAME) or ""),
                project_id=ctx.project_id)
        self._traces: dict[str, TraceInfo] = {}
        self._agents: dict[str, str | None] = {}  # open span id -> enclosing agent's name
        self._models: dict[str, str] = {}  # open Responses span id -> the model it calls
        self._warned = False
        self._shutdown = False

    @property
    def dropped(self) -> int:
        """Span lines lost (queue full, encode failure, write failure)."""
        return self.writer.dropped

    # --- TracingProcessor ------------------------------------------------------------------

    def on_trace_start(self, trace: Trace) -> None:
        try:
            self._traces[trace.trace_id] = TraceInfo(
                workflow_name=trace.name,
                group_id=getattr(trace, "group_id", None),
                metadata=getattr(trace, "metadata", None),
            )
            if self.open_spans is not None:
                self.open_spans.trace_started(trace.trace_id, trace)
        except Exception as exc:
            self._warn(exc)

    def on_trace_end(self, trace: Trace) -> None:
        self._traces.pop(trace.trace_id, None)
        if self.open_spans is not None:
            self.open_spans.trace_ended(trace.trace_id)

    def on_span_start(self, span: Span[Any]) -> None:
        # The parent chain is only reliably known now: remember whose agent this is.
        try:
            data = span.span_data
            if isinstance(data, AgentSpanData):
                self._agents[span.span_id] = data.name
            else:
                parent = span.parent_id
                self._agents[span.span_id] = self._agents.get(parent) if parent else None
                if isinstance(data, ResponseSpanData):
                    model = calling_model(sys._getframe(1))
                    if model:
                        self._models[span.span_id] = model
            if self.open_spans is not None:
                self.open_spans.span_started(span.span_id, span)
        except Exception as exc:
            self._warn(exc)

    def on_span_end(self, span: Span[Any]) -> None:
        try:
            item = partial(self._encode, span, self._agents.pop(span.span_id, None),
                           self._traces.get(span.trace_id), self._models.pop(span.span_id, None))
            self.writer.submit((item,))
            if self.open_spans is not None:
                self.open_spans.span_ended(span.span_id, span.trace_id)
        except Exception as exc:
            self._warn(exc)

    def force_flush(self, timeout: float | None = None) -> bool:
        """Write every span ended so far; True if done in time."""
        try:
            return self.writer.flush(timeout)
        except Exception as exc:
            self._warn(exc)
            return False

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush and close (the writer too, if this processor made it); safe twice."""
        if self._shutdown:
            return
        self._shutdown = True
        try:
            if self.open_spans is not None:
                self.open_spans.close(timeout)
            if self._owns_writer:
                self.writer.shutdown(timeout)
            else:
                self.writer.flush(timeout)
        except Exception as exc:
            self._warn(exc)

    # --- on the writer's and the sidecar's threads ------------------------------------------

    def _describe_open(self, span: Span[Any]) -> dict[str, Any]:
        """An open span as the sidecar records it (its name and kind as its line will have them)."""
        data = span.span_data
        exported = data.export() or {}
        span_type = span_type_of(data, exported)
        model = self._models.get(span.span_id) or exported.get("model")
        started = canonical.ns_from_iso(span.started_at or "")
        return {
            "span_id": sdk_id(span.span_id, "span_"),
            "parent_span_id": sdk_id(span.parent_id, "span_") if span.parent_id else "",
            "name": span_name(span_type, exported),
            "kind": OBSERVATION_KIND_BY_TYPE.get(span_type, canonical.OBS_SPAN),
            "agent": self._agents.get(span.span_id),
            "model": model if isinstance(model, str) else None,
            "started_at": started / 1e9 if started else None,
        }

    def _encode(self, span: Span[Any], agent_name: str | None, trace: TraceInfo | None,
                model_name: str | None) -> bytes:
        return canonical.encode_line(span_to_line(span, ctx=self.ctx, trace=trace, agent_name=agent_name,
                                                  model_name=model_name))

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("[non-fatal] halo tracing: %r", exc)


_install_lock = threading.Lock()


def setup_tracing(
    service_name: str | None = None,
    project_id: str | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    run_id: str | None = None,
    keep_openai_exporter: bool = False,
    resource_attributes: Mapping[str, Any] | None = None,
    writer: JsonlWriter | None = None,
    install: bool = True,
    fsync: str | bool | None = None,
    max_queue_lines: int | None = None,
    flush_interval: float | None = None,
    block_timeout: float = config.DEFAULT_BLOCK_TIMEOUT,
    on_flush: Callable[[int], None] | None = None,
    openinference_flat_messages: bool = False,
    open_spans: bool = True,
) -> HaloTracingProcessor:
    """Install a `HaloTracingProcessor` writing to `path` and return it.

    Defaults: `path` from `$HALO_TRACES_PATH` else ./traces.jsonl,
    `service_name` from `$HALO_SERVICE_NAME`, `project_id` from
    `$HALO_PROJECT_ID`, `run_id` from `$HALO_RUN_ID` else a fresh id per
    process. `keep_openai_exporter` keeps the SDK's default uploader too;
    `resource_attributes` adds resource attributes; `writer` shares an existing
    `JsonlWriter` (the writer options below are then its own); `install=False`
    builds the processor without installing it. `fsync`, `max_queue_lines`,
    `flush_interval`, `block_timeout` and `on_flush` configure the writer, as
    in `JsonlWriter`. `openinference_flat_messages=True` also writes each
    message as OpenInference's flat `llm.input_messages.N.message.*` keys, for
    viewers that read only those (the conversation is otherwise written once,
    as the `llm.input_messages` / `llm.output_messages` JSON). `open_spans=False`
    writes no sidecar of open traces (`halo watch` then sees tasks only as their
    spans end). A bad value raises `ValueError` naming it.
    """
    run_id = config.setting(run_id, config.HALO_RUN_ID, "") or new_run_id()
    service = config.setting(service_name, config.HALO_SERVICE_NAME, config.DEFAULT_SERVICE_NAME)
    project = config.setting(project_id, config.HALO_PROJECT_ID, config.DEFAULT_PROJECT_ID)
    resource = {canonical.SERVICE_NAME: str(service), canonical.INF_RUN_ID: str(run_id),
                **dict(resource_attributes or {})}

    owns = writer is None
    if writer is None:
        writer = JsonlWriter(path, fsync=fsync, max_queue_lines=max_queue_lines,
                             flush_interval=flush_interval, block_timeout=block_timeout,
                             on_flush=on_flush)
    processor = HaloTracingProcessor(writer, ctx=ExportContext(str(project), resource,
                                                          flat_messages=openinference_flat_messages),
                                     owns_writer=owns, open_spans=open_spans)
    if install:
        with _install_lock:
            processors: list[TracingProcessor] = []
            if keep_openai_exporter:
                from agents.tracing.processors import default_processor

                processors.append(default_processor())
            processors.append(processor)
            set_trace_processors(processors)
    return processor
