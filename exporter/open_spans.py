"""What is open right now: the sidecar of trace and span starts beside a trace shard.

Spans are written when they end, so a task hung on a model call, or whose
process died, leaves nothing in the canonical file. `OpenSpanRecorder` keeps
the open traces and spans of one process in memory and a background thread
rewrites them, about once a second, as a small JSON file beside the shard:
`SHARD.halo-open-<host>-<pid>.json` (atomically: temp file + rename). The
canonical JSONL is never touched, so halo-engine still loads it. On the
agent's thread a start or an end is one dict store. `close()` (at shutdown or
interpreter exit) removes the file; a process killed with SIGKILL leaves it,
which is how readers tell an abandoned task (same host, pid gone).

The format (`FORMAT`), read by `halo_live.indexer.live`:
    {"format", "pid", "pid_start" (the process's start time, to tell a reused pid), "host",
     "updated_at" (epoch s), "interval" (s), "service", "project_id",
     "traces": [{"trace_id", "name", "started_at", "last_activity",
                 "spans": [{"span_id", "parent_span_id", "name", "kind", "agent", "model", "started_at"}]}]}
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import orjson

logger = logging.getLogger(__name__)

FORMAT = "halo-live-open/1"
SIDECAR_MARK = ".halo-open-"  # SHARD + MARK + host-pid + SUFFIX
SIDECAR_SUFFIX = ".json"
DEFAULT_INTERVAL = 1.0  # seconds between rewrites while something changed
HEARTBEAT = 5.0  # rewrite at least this often while anything is open, so readers see it alive

_LIVE: "weakref.WeakSet[OpenSpanRecorder]" = weakref.WeakSet()


def hostname() -> str:
    """This machine's name as written in sidecars (and compared by readers)."""
    return socket.gethostname() or "localhost"


def sidecar_path(shard: str | os.PathLike[str], pid: int | None = None, host: str | None = None) -> str:
    """Where the process `pid` on `host` records what is open in `shard`."""
    safe = (host or hostname()).replace(os.sep, "_")
    return f"{os.fspath(shard)}{SIDECAR_MARK}{safe}-{pid or os.getpid()}{SIDECAR_SUFFIX}"


def is_sidecar(name: str) -> bool:
    """True for a sidecar's file name."""
    return SIDECAR_MARK in name and name.endswith(SIDECAR_SUFFIX)


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None where unknown:
    with the pid it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[19].decode()
    except (OSError, IndexError):
        return None


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A sidecar's content, or None when it is gone, half-written or not ours."""
    try:
        with open(path, "rb") as fh:
            data = orjson.loads(fh.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


class OpenSpanRecorder:
    """The open traces and spans of this process for one shard, kept current in its sidecar.

    `describe(span) -> dict` (span_id, parent_span_id, name, kind, agent, model,
    started_at) and `trace_id_of(span_or_trace) -> str` run on the recorder's
    thread only, so the producer's hooks stay a dict store each.
    """

    def __init__(self, shard: str | os.PathLike[str], *, describe: Callable[[Any], dict[str, Any]],
                 trace_id_of: Callable[[Any], str], service: str = "", project_id: str = "",
                 interval: float = DEFAULT_INTERVAL) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, not {interval!r}")
        self.shard = os.fspath(shard)
        self.describe = describe
        self.trace_id_of = trace_id_of
        self.service = service
        self.project_id = project_id
        self.interval = interval
        self._init_state()
        _LIVE.add(self)

    def _init_state(self) -> None:
        # also in a forked child: what the parent had open is the parent's
        self._traces: dict[str, tuple[Any, float]] = {}  # SDK trace id -> (trace, started)
        self._spans: dict[str, Any] = {}  # SDK span id -> open span
        self._activity: dict[str, float] = {}  # SDK trace id -> last span end
        self._dirty = False
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._path: str | None = None
        self._written_empty = True
        self._warned = False

    # --- on the producer's thread: one store each ------------------------------------------

    def trace_started(self, trace_id: str, trace: Any) -> None:
        self._traces[trace_id] = (trace, time.time())
        self._dirty = True
        if self._thread is None:
            self._start()

    def trace_ended(self, trace_id: str) -> None:
        self._traces.pop(trace_id, None)
        self._activity.pop(trace_id, None)
        self._dirty = True

    def span_started(self, span_id: str, span: Any) -> None:
        self._spans[span_id] = span
        self._dirty = True

    def span_ended(self, span_id: str, trace_id: str) -> None:
        self._spans.pop(span_id, None)
        self._activity[trace_id] = time.time()
        self._dirty = True

    # --- the recorder's thread -------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:  # two agent threads may start the first traces at once
            if self._stop or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="halo-open-spans", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last_write = 0.0
        while not self._stop:
            if last_write:  # the first trace is written at once, then at most once an interval
                self._wake.wait(self.interval)
            if self._stop:
                break
            now = time.monotonic()
            if self._dirty or (not self._written_empty and now - last_write >= HEARTBEAT):
                self.write()
                last_write = now

    def snapshot(self) -> dict[str, Any]:
        """What is open now, in the sidecar's format."""
        self._dirty = False
        traces = self._traces.copy()  # one C call each: consistent enough against the hooks
        spans = list(self._spans.values())
        activity = self._activity.copy()
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for span in spans:
            try:
                by_trace.setdefault(span.trace_id, []).append(self.describe(span))
            except Exception as exc:  # a span type we cannot describe: keep the others
                self._warn(exc)
        out = []
        for sdk_id, (trace, started) in traces.items():
            open_spans = by_trace.get(sdk_id, [])
            latest = max([started, activity.get(sdk_id, 0.0)] + [s.get("started_at") or 0.0 for s in open_spans])
            out.append({"trace_id": self.trace_id_of(sdk_id), "name": getattr(trace, "name", None),
                        "started_at": started, "last_activity": latest, "spans": open_spans})
        pid = os.getpid()
        return {"format": FORMAT, "pid": pid, "pid_start": process_start(pid), "host": hostname(),
                "updated_at": time.time(),
                "interval": self.interval, "service": self.service, "project_id": self.project_id,
                "traces": out}

    def write(self) -> None:
        """Rewrite the sidecar now (the thread does this; tests and `close` may too)."""
        try:
            data = self.snapshot()
            path = self._path = sidecar_path(self.shard)
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            # the shard exists from the first open trace on, so readers of a single file find it
            os.close(os.open(self.shard, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
            tmp = f"{path}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(orjson.dumps(data))
            os.replace(tmp, path)
            self._written_empty = not data["traces"]
        except Exception as exc:
            self._warn(exc)

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread and remove the sidecar (nothing of this process is open any more)."""
        self._stop = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        path = self._path or sidecar_path(self.shard)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("[non-fatal] halo open-span sidecar: %r", exc)


def _close_all_at_exit() -> None:
    for recorder in list(_LIVE):
        recorder.close(timeout=1.0)


def _reinit_after_fork() -> None:
    for recorder in list(_LIVE):
        recorder._init_state()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
