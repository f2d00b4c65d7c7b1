"""The enclosing agent of an LLM or TOOL span, across batches and requests.

LLM and TOOL spans rarely name their agent; an AGENT span above them does. A
producer sees a span only when it ends, so the children of an agent usually
arrive before the agent span itself, often in an earlier batch (a
`SimpleSpanProcessor` sends one span per export). `AgentLineage` remembers,
per trace, every span's parent and agent name (bounded: the oldest traces are
forgotten first), and holds back a line whose agent cannot be known yet until
an ancestor names one, its trace's chain reaches a root, or `wait` seconds
pass. Both OTel producers (`HaloSpanExporter`, `halo serve`'s receiver) use it,
so the line carries the same `inference.agent_name` whatever the batching.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from halo_live.exporter import canonical

HINTED_KINDS = (canonical.OBS_LLM, canonical.OBS_TOOL)
DEFAULT_MAX_TRACES = 4096
# Spans remembered in all (~300 bytes each): traces of 100k spans must not make the
# trace bound a memory bound of gigabytes. Past it the oldest traces are forgotten, and a
# trace that alone is larger stops growing (its later spans resolve as "unknown").
DEFAULT_MAX_SPANS = 131_072
DEFAULT_MAX_HELD = 20_000  # lines held at once; past this the oldest are written unnamed
_MAX_HOPS = 64  # bounds a walk up a (malformed, cyclic) parent chain


@dataclass(slots=True)
class _Held:
    trace_id: str
    span_id: str
    deadline: float
    finish: Callable[[str | None], bytes]  # the encoded line, given the agent name found


class AgentLineage:
    """Per-trace memory of parents and agent names, and lines held for their agent.

    `add()` records a span; `resolve()` walks up from a span: ("named", name),
    ("none", None) when the chain reaches a root with no agent, or ("unknown",
    None) when an ancestor has not arrived. `hold()` keeps a line until it can
    be resolved; released lines go to `release(lines)`. With `wait` 0 nothing
    is held. Thread-safe; `close()` releases everything held.
    """

    def __init__(self, release: Callable[[list[bytes]], Any], *, wait: float = 0.0,
                 max_traces: int = DEFAULT_MAX_TRACES, max_held: int = DEFAULT_MAX_HELD,
                 max_spans: int = DEFAULT_MAX_SPANS) -> None:
        if wait < 0:
            raise ValueError(f"wait must be >= 0 seconds, not {wait!r}")
        self.release = release
        self.wait = wait
        self.max_traces = max_traces
        self.max_held = max_held
        self.max_spans = max_spans
        self._span_count = 0
        self._traces: OrderedDict[str, dict[str, tuple[str, str | None]]] = OrderedDict()
        self._held: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._by_trace: dict[str, set[tuple[str, str]]] = {}  # trace id -> its held keys
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- memory ---------------------------------------------------------------------------

    def add(self, trace_id: str, span_id: str, parent_id: str, agent: str | None) -> None:
        """Remember one span (call for every span, before resolving any of its batch)."""
        with self._lock:
            spans = self._traces.get(trace_id)
            if spans is None:
                spans = self._traces[trace_id] = {}
            else:
                self._traces.move_to_end(trace_id)
            if span_id not in spans:
                while ((len(self._traces) > self.max_traces or self._span_count >= self.max_spans)
                       and next(iter(self._traces)) != trace_id):
                    self._span_count -= len(self._traces.popitem(last=False)[1])
                if self._span_count >= self.max_spans:
                    return  # this trace alone fills the memory: remember no more of it
                self._span_count += 1
            spans[span_id] = (parent_id or "", agent)

    def seen(self, trace_id: str, span_id: str) -> bool:
        """Whether this span has arrived (and so is written, or held)."""
        with self._lock:
            return span_id in (self._traces.get(trace_id) or ())

    def resolve(self, trace_id: str, span_id: str) -> tuple[str, str | None]:
        """The agent above `span_id` (not its own): ("named"|"none"|"unknown", name)."""
        with self._lock:
            return self._resolve(trace_id, span_id)

    def _resolve(self, trace_id: str, span_id: str) -> tuple[str, str | None]:
        spans = self._traces.get(trace_id) or {}
        entry = spans.get(span_id)
        parent = entry[0] if entry else ""
        for _ in range(_MAX_HOPS):
            if not parent:
                return "none", None
            entry = spans.get(parent)
            if entry is None:
                return "unknown", None
            parent, name = entry
            if name:
                return "named", name
        return "none", None

    # --- held lines -----------------------------------------------------------------------

    def place(self, trace_id: str, span_id: str, finish: Callable[[str | None], bytes]) -> bytes | None:
        """The line of an LLM/TOOL span with no agent of its own: now if its agent is known
        (or none can be), else None and the line is held."""
        with self._lock:
            state, name = self._resolve(trace_id, span_id)
            if state != "unknown" or self.wait <= 0 or self._closed:
                return finish(name)
            key = (trace_id, span_id)
            self._held[key] = _Held(trace_id, span_id, time.monotonic() + self.wait, finish)
            self._held.move_to_end(key)  # oldest first, so the deadlines are in order
            self._by_trace.setdefault(trace_id, set()).add(key)
            overflow = [self._pop(next(iter(self._held))) for _ in range(len(self._held) - self.max_held)]
        self._start_timer()
        if overflow:
            self.release([h.finish(None) for h in overflow])
        return None

    def _pop(self, key: tuple[str, str]) -> _Held:
        held = self._held.pop(key)
        keys = self._by_trace[held.trace_id]
        keys.discard(key)
        if not keys:
            del self._by_trace[held.trace_id]
        return held

    def settle(self, trace_ids: set[str]) -> list[bytes]:
        """Lines held in `trace_ids` that can now be resolved (call after adding a batch)."""
        out: list[bytes] = []
        with self._lock:
            if not self._held:
                return out
            for trace_id in trace_ids:
                for key in list(self._by_trace.get(trace_id, ())):
                    state, name = self._resolve(*key)
                    if state != "unknown":
                        out.append(self._pop(key).finish(name))
        return out

    def flush(self) -> None:
        """Release every held line now, named where known."""
        with self._lock:
            held = [(h, self._resolve(h.trace_id, h.span_id)[1]) for h in self._held.values()]
            self._held.clear()
            self._by_trace.clear()
        if held:
            self.release([h.finish(name) for h, name in held])

    @property
    def held(self) -> int:
        return len(self._held)

    def close(self) -> None:
        """Release everything held and stop the timer; safe twice."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.flush()

    def _start_timer(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._expire_loop, name="halo-agent-lineage",
                                            daemon=True)
        self._thread.start()

    def _expire_loop(self) -> None:
        while not self._closed:
            with self._lock:
                now = time.monotonic()
                expired = []
                while self._held and (first := next(iter(self._held.values()))).deadline <= now:
                    held = self._pop((first.trace_id, first.span_id))
                    expired.append((held, self._resolve(held.trace_id, held.span_id)[1]))
                nearest = next(iter(self._held.values())).deadline if self._held else now + self.wait
            if expired:
                self.release([h.finish(name) for h, name in expired])
            self._wake.wait(max(0.05, nearest - time.monotonic()))
            self._wake.clear()
