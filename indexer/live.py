"""Which traces are running, stuck or abandoned right now, and what each is doing.

Two sources, both small: the open-span sidecars the SDK processor writes beside
each shard (`halo_live.exporter.open_spans`), and the index's traces whose root
span has not arrived (what an OTLP receiver, which sees spans only as they end,
knows of a trace in flight). A trace open in either is

- **abandoned** when its writing process is gone (same host, pid not alive or
  reused by another process), its writer has stopped refreshing its sidecar for
  longer than `stuck_after` (at least 15 s: another host's process, which we
  cannot ask), or it has been silent far past the threshold
  (`SILENT_ABANDON_FACTOR` x `stuck_after`);
- **stuck** when no span of it started or ended for `stuck_after` seconds;
- **running** otherwise.

Every other indexed trace is complete. These sets are computed per call (only
open traces are read) and kept apart from the index's query internals: the
engine intersects them with its candidates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halo_live.exporter.canonical import ns_from_iso
from halo_live.exporter.open_spans import HEARTBEAT, hostname, is_sidecar, process_start, read_sidecar
from halo_live.indexer.models import IndexFilters

DEFAULT_STUCK_AFTER = 300.0  # seconds; `--stuck-after` wherever a threshold is taken
SILENT_ABANDON_FACTOR = 4  # an open trace silent this many thresholds is abandoned
WRITER_SILENT_MIN = 3 * HEARTBEAT  # another host's writer is gone after max(this, stuck_after) unrefreshed
STATES = ("complete", "running", "stuck", "abandoned")
OPEN_STATES = STATES[1:]


@dataclass(slots=True)
class OpenSpan:
    """A span that has started and not ended (from a sidecar)."""

    span_id: str
    parent_span_id: str
    name: str
    kind: str  # the observation kind its line will have: LLM, TOOL, AGENT, ...
    agent: str | None
    model: str | None
    started_at: float | None  # epoch seconds


@dataclass(slots=True)
class OpenTrace:
    """One trace in flight, its state, and where its writer is."""

    trace_id: str
    state: str  # running | stuck | abandoned
    started_at: float | None
    last_activity: float  # epoch seconds of its latest span start or end
    silent_for: float  # seconds since then
    spans: list[OpenSpan] = field(default_factory=list)
    name: str | None = None  # the SDK trace's (workflow) name
    pid: int | None = None
    host: str | None = None
    service: str | None = None
    why: str = ""  # why abandoned, in a few words that do not change with time: "process 123 is gone"
    indexed: bool = True  # False while none of its spans is in the file yet

    @property
    def current_span(self) -> OpenSpan | None:
        """What it is doing: the open span that started last (the innermost)."""
        spans = [s for s in self.spans if s.started_at is not None] or self.spans
        return max(spans, key=lambda s: s.started_at or 0.0) if spans else None


@dataclass(slots=True)
class TaskStates:
    """The open traces of a dataset at one instant, by state."""

    now: float
    stuck_after: float
    traces: dict[str, OpenTrace]  # trace id -> open trace

    def ids(self, state: str) -> set[str]:
        """Trace ids in `state` (one of OPEN_STATES)."""
        return {tid for tid, t in self.traces.items() if t.state == state}

    def count(self, state: str) -> int:
        return sum(1 for t in self.traces.values() if t.state == state)

    def unindexed(self, state: str | None = None) -> list[OpenTrace]:
        """Open traces none of whose spans is written yet (in `state`, if given), oldest first."""
        found = [t for t in self.traces.values() if not t.indexed and (state is None or t.state == state)]
        return sorted(found, key=lambda t: (t.started_at or 0.0, t.trace_id))


def sidecar_files(dataset: Any) -> list[Path]:
    """The open-span sidecars beside the dataset's shards (also of shards not written yet)."""
    root = Path(dataset.root)
    if dataset.kind == "file":
        prefix = Path(dataset.pattern).name + ".halo-open-"
        match = lambda name: name.startswith(prefix) and is_sidecar(name)  # noqa: E731
    elif dataset.kind == "folder":
        match = lambda name: is_sidecar(name) and ".jsonl.halo-open-" in name  # noqa: E731
    else:
        members = {Path(rel).name for rel in dataset.files()}
        match = lambda name: is_sidecar(name) and name.split(".halo-open-")[0] in members  # noqa: E731
    try:
        return sorted(root / e.name for e in os.scandir(root) if match(e.name) and e.is_file())
    except OSError:
        return []


def process_alive(pid: int) -> bool:
    """True if a process `pid` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped by its parent is still "there" for kill(0)
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def task_states(dataset: Any, snap: Any, *, now: float, stuck_after: float = DEFAULT_STUCK_AFTER,
                host: str | None = None) -> TaskStates:
    """Classify every open trace of `dataset` (sidecars + the index's traces without a root)."""
    if stuck_after <= 0:
        raise ValueError(f"stuck_after must be > 0 seconds, not {stuck_after!r}")
    here = host or hostname()
    traces: dict[str, OpenTrace] = {}
    alive: dict[tuple[int, Any], bool] = {}
    for path in sidecar_files(dataset):
        data = read_sidecar(path)
        if data is None:
            continue
        pid, writer_host = int(data.get("pid") or 0), str(data.get("host") or "")
        updated = float(data.get("updated_at") or 0.0)
        if writer_host == here:
            started = data.get("pid_start")
            if (pid, started) not in alive:
                alive[pid, started] = process_alive(pid) and (
                    started is None or process_start(pid) in (None, started))
            gone = None if alive[pid, started] else f"process {pid} is gone"
        else:  # we cannot ask another host: a writer that stopped refreshing its sidecar is gone
            gone = (f"process {pid} on {writer_host} stopped refreshing its sidecar"
                    if now - updated > max(stuck_after, WRITER_SILENT_MIN) else None)
        for t in data.get("traces") or ():
            trace_id = str(t.get("trace_id") or "")
            if not trace_id:
                continue
            spans = [OpenSpan(str(s.get("span_id") or ""), str(s.get("parent_span_id") or ""),
                              str(s.get("name") or ""), str(s.get("kind") or ""), s.get("agent"),
                              s.get("model"), s.get("started_at")) for s in t.get("spans") or ()]
            last = float(t.get("last_activity") or t.get("started_at") or updated)
            traces[trace_id] = OpenTrace(trace_id, "", t.get("started_at"), last, 0.0, spans,
                                         t.get("name"), pid, writer_host, data.get("service"), gone or "")
    # the index's traces without a root span (a receiver's in-flight traces, or a killed writer's)
    rootless = snap.trace_ids(IndexFilters(complete=False))
    for row in snap.rows([tid for tid in rootless if tid not in traces]):
        end = ns_from_iso(row.end_time)
        start = ns_from_iso(row.start_time)
        last = end / 1e9 if end else row.last_seen
        traces[row.trace_id] = OpenTrace(row.trace_id, "", start / 1e9 if start else None, last, 0.0,
                                         service=(row.service_names or [None])[0])
    for t in traces.values():
        if t.pid is not None:  # from a sidecar: its spans may all be still open
            row = snap.trace(t.trace_id)
            t.indexed = row is not None
            end = ns_from_iso(row.end_time) if row is not None else None
            if end:  # a span may have ended since the sidecar was last written
                t.last_activity = max(t.last_activity, end / 1e9)
        t.silent_for = max(0.0, now - t.last_activity)
        if t.why:
            t.state = "abandoned"
        elif t.silent_for >= SILENT_ABANDON_FACTOR * stuck_after:
            t.state, t.why = "abandoned", f"silent for {SILENT_ABANDON_FACTOR}x the stuck threshold"
        elif t.silent_for >= stuck_after:
            t.state = "stuck"
        else:
            t.state = "running"
    return TaskStates(now=now, stuck_after=stuck_after, traces=traces)
