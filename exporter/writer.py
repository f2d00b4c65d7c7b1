"""`JsonlWriter`: the one way bytes reach a trace file.

The caller's thread only enqueues; one background thread (started on first
use, woken by an `Event`) batches and writes. Each flush is one `write()` of
whole lines on an `O_APPEND` descriptor under `fcntl.flock`, so several
processes can append to one file without torn or interleaved lines. A file
left ending in a half line (a crashed writer) is healed: our write starts
with a newline. A full queue blocks the caller briefly, then refuses and
counts the lines (`dropped`) with a warning; nothing is lost silently.
A failed write (disk full) is cut back to whole lines, counted, reported
once per outage, and retried with the next batch. If `path` is renamed
(log rotation) or deleted, the next batch goes to a new file at `path`.
"""

from __future__ import annotations

import atexit
import collections
import errno
import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from halo_live.exporter import config

logger = logging.getLogger(__name__)

_MAX_WRITE_BYTES = 16 * 1024 * 1024  # one write() per batch, batches cut at whole tickets past this
_DEFERRED_SIZE_GUESS = 2048  # queue accounting for items encoded on the worker thread
_MAX_FAILED_RANGES = 1024


class JsonlWriter:
    """Append canonical lines to `path` from a background thread.

    `fsync`: "never" (default; the OS decides), "batch" (fdatasync after each
    flush, before `wait()` returns) or "always" (every submit is written and
    synced at once, no batching delay). Items that are not bytes are turned
    into a line on the worker thread by `encode(item)`, or by calling them if
    no `encode` is given (a zero-argument callable), which keeps the caller's
    cost to an append. `on_flush(end_offset)` runs after each write.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync: str | bool | None = None,
        max_queue_lines: int | None = None,
        max_queue_bytes: int = 256 * 1024 * 1024,
        flush_interval: float | None = None,
        block_timeout: float = config.DEFAULT_BLOCK_TIMEOUT,
        on_flush: Callable[[int], None] | None = None,
        encode: Callable[[Any], bytes | None] | None = None,
    ) -> None:
        self.path = config.traces_path(path)
        self.fsync = config.checked("fsync", fsync, config.HALO_FSYNC, config.DEFAULT_FSYNC,
                                    config.parse_fsync)
        self.max_queue_lines = config.checked("max_queue_lines", max_queue_lines,
                                              config.HALO_MAX_QUEUE_LINES,
                                              config.DEFAULT_MAX_QUEUE_LINES, config.positive_int)
        self.max_queue_bytes = config.checked("max_queue_bytes", max_queue_bytes, None, None,
                                              config.positive_int)
        self.flush_interval = config.checked("flush_interval", flush_interval,
                                             config.HALO_FLUSH_INTERVAL,
                                             config.DEFAULT_FLUSH_INTERVAL, config.positive_float)
        if block_timeout < 0:
            raise ValueError(f"block_timeout must be >= 0, not {block_timeout!r}")
        self.block_timeout = block_timeout
        self.on_flush = on_flush
        self.encode = encode
        self.dropped = 0
        self.lines_written = 0
        self.bytes_written = 0
        self._init_state()
        _LIVE.add(self)

    def _init_state(self) -> None:
        # Also run in a forked child: fresh locks, empty queue, no thread, no fd
        # (a shared open file description would share the flock too).
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)  # submitters wait for queue room
        self._done = threading.Condition(self._lock)  # waiters wait for tickets to be written
        self._io_lock = threading.Lock()  # one drainer at a time (worker or inline)
        self._wake = threading.Event()
        self._pending: collections.deque[tuple[int, Sequence[Any]]] = collections.deque()
        self._pending_lines = 0
        self._pending_bytes = 0
        self._next_ticket = 0
        self._written_ticket = 0
        self._failed: collections.deque[tuple[int, int]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._can_read = True
        self._closed = False
        self._warned_drop_at = 0
        self._warned_error = False
        self._failing_since_dropped: int | None = None  # `dropped` when the current write outage began
        self._dropped_at_flush = self.dropped

    # --- public API --------------------------------------------------------------------

    def submit(self, lines: Sequence[Any], timeout: float | None = None) -> int | None:
        """Enqueue whole lines (bytes ending in b"\\n", or deferred items, see the class).

        Blocks at most `timeout` (default `block_timeout`) for room; returns a
        ticket for `wait()`, or None if the queue stayed full or the writer is
        shut down (the lines are then counted in `dropped`).
        """
        if not lines:
            return self._next_ticket
        nbytes = sum(len(x) if isinstance(x, (bytes, bytearray, memoryview)) else _DEFERRED_SIZE_GUESS
                     for x in lines)
        count = len(lines)
        wait_for = self.block_timeout if timeout is None else timeout
        with self._lock:
            if not self._closed and not self._has_room(count, nbytes):
                self._wake.set()  # a full queue should drain now, not at the next interval
                self._space.wait_for(lambda: self._closed or self._has_room(count, nbytes), wait_for)
            if self._closed or not self._has_room(count, nbytes):
                self._count_drop_locked(count, "the writer is shut down" if self._closed
                                        else "the queue is full")
                return None
            self._next_ticket += 1
            ticket = self._next_ticket
            self._pending.append((ticket, lines))
            self._pending_lines += count
            self._pending_bytes += nbytes
            urgent = self.fsync == "always" or self._pending_lines * 2 >= self.max_queue_lines
        self._ensure_worker()
        if urgent:
            self._wake.set()
        return ticket

    def wait(self, ticket: int | None, timeout: float | None = None) -> bool:
        """True once `ticket`'s lines are written (and synced per policy); False on timeout or failure."""
        if ticket is None:
            return False
        return self._await_written(ticket, timeout) and not self._failed_ticket(ticket)

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything submitted before this call.

        True if done within `timeout` and no line was lost (refused, not
        encodable, or a failed write: see `dropped`) since the previous
        flush; False otherwise, as OpenTelemetry's `force_flush` expects.
        """
        with self._lock:
            ticket = self._next_ticket
        done = ticket == 0 or self._await_written(ticket, timeout)
        return self._nothing_lost_since_last_flush() and done

    force_flush = flush

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush, stop the thread and close the file; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._space.notify_all()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._drain()  # whatever the worker left (or it never started)
            self._close_fd()

    def _await_written(self, ticket: int, timeout: float | None) -> bool:
        """True once `ticket` is written: by the worker, or inline when none runs."""
        self._wake.set()  # someone is waiting: don't sit out the flush interval
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._done.wait_for(lambda: self._written_ticket >= ticket, timeout)
        self._drain()
        return self._written_ticket >= ticket

    def _nothing_lost_since_last_flush(self) -> bool:
        # Each loss is reported by one flush only; `dropped` keeps the total.
        with self._lock:
            lost = self.dropped != self._dropped_at_flush
            self._dropped_at_flush = self.dropped
        return not lost

    @property
    def pending_lines(self) -> int:
        """Lines submitted but not yet written."""
        return self._pending_lines

    # --- worker ------------------------------------------------------------------------------

    def _has_room(self, count: int, nbytes: int) -> bool:
        if not self._pending:  # an oversized batch still goes through an empty queue
            return True
        return (self._pending_lines + count <= self.max_queue_lines
                and self._pending_bytes + nbytes <= self.max_queue_bytes)

    def _count_drop_locked(self, count: int, why: str) -> None:
        self.dropped += count
        # Warn on the first drop and then each time the total doubles: visible, not a flood.
        if self.dropped >= max(1, self._warned_drop_at * 2):
            self._warned_drop_at = self.dropped
            logger.warning("[non-fatal] halo: %d span line(s) not written (dropped or refused) so far for %s (%s)",
                           self.dropped, self.path, why)

    def _ensure_worker(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="halo-jsonl-writer", daemon=True)
            try:
                self._thread.start()
            except RuntimeError:  # interpreter shutting down: flush() drains inline
                self._thread = None

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            if self._closed and not self._pending:
                return

    def _take_batch(self) -> tuple[int, int, list[Any]]:
        """Whole tickets from the queue, up to ~_MAX_WRITE_BYTES: (first, last ticket, items)."""
        items: list[Any] = []
        size = 0
        with self._lock:
            first = last = 0
            while self._pending and (not items or size < _MAX_WRITE_BYTES):
                ticket, lines = self._pending.popleft()
                first = first or ticket
                last = ticket
                items.extend(lines)
                for x in lines:
                    size += len(x) if isinstance(x, (bytes, bytearray, memoryview)) else _DEFERRED_SIZE_GUESS
            self._pending_lines -= len(items)
            self._pending_bytes -= size
            self._space.notify_all()
        return first, last, items

    def _drain(self) -> None:
        with self._io_lock:
            wrote_any = False
            last_ticket = 0
            while True:
                first, last, items = self._take_batch()
                if not items:
                    break
                data, count = self._encode_all(items)
                ok = self._write(data, count) if data else True
                wrote_any = wrote_any or bool(data)
                if not ok:
                    with self._lock:
                        self._failed.append((first, last))
                        while len(self._failed) > _MAX_FAILED_RANGES:
                            self._failed.popleft()
                last_ticket = last
            if wrote_any and self.fsync != "never" and self._fd is not None:
                try:
                    os.fdatasync(self._fd)
                except OSError as exc:
                    self._report_error(exc)
            if last_ticket:
                with self._lock:
                    self._written_ticket = max(self._written_ticket, last_ticket)
                    self._done.notify_all()

    def _encode_all(self, items: list[Any]) -> tuple[bytes, int]:
        parts: list[bytes] = []
        for item in items:
            if not isinstance(item, (bytes, bytearray, memoryview)):
                try:
                    item = self.encode(item) if self.encode is not None else item()
                except Exception as exc:  # a producer bug must not stop the writer
                    logger.warning("[non-fatal] halo: cannot encode a span: %r", exc)
                    item = None
                if item is None:
                    with self._lock:
                        self._count_drop_locked(1, "a span could not be encoded")
                    continue
            item = bytes(item)
            if not item.endswith(b"\n"):
                item += b"\n"
            parts.append(item)
        return b"".join(parts), len(parts)

    def _open(self) -> int:
        if self._fd is not None and self._moved():
            self._close_fd()  # rotated away or deleted: write to a file at `path` again
        if self._fd is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            flags = os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            try:  # read access lets us check for a half line before writing
                self._fd = os.open(self.path, os.O_RDWR | flags, 0o644)
                self._can_read = True
            except PermissionError:
                self._fd = os.open(self.path, os.O_WRONLY | flags, 0o644)
                self._can_read = False
        return self._fd

    def _moved(self) -> bool:
        """True if `path` no longer names the file we hold open (renamed by a rotation, or deleted)."""
        try:
            here, ours = os.stat(self.path), os.fstat(self._fd)  # type: ignore[arg-type]
        except OSError:
            return True
        return (here.st_dev, here.st_ino) != (ours.st_dev, ours.st_ino)

    def _write(self, data: bytes, lines: int) -> bool:
        try:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = None
            try:
                # Heal under the lock: if the file ends in a half line (a writer died
                # mid-line), start ours on a new line so both stay parseable.
                size = os.fstat(fd).st_size
                if size and self._can_read and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                view = memoryview(data)
                while view:  # a regular file takes it in one write(); loop only on a short write
                    n = os.write(fd, view)
                    view = view[n:]
                end = os.lseek(fd, 0, os.SEEK_CUR)
            except OSError:
                # A full disk (ENOSPC, EFBIG) can take part of the batch: cut it off, so
                # the file never holds a half line nor lines whose request was refused.
                if size is not None:
                    try:
                        os.ftruncate(fd, size)
                    except OSError:
                        pass  # the reader counts a half line as bad; the next write heals it
                raise
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as exc:
            with self._lock:
                if self._failing_since_dropped is None:
                    self._failing_since_dropped = self.dropped
                    self._report_error(exc)
                self.dropped += lines  # said once per outage above, not once per doubling
            if exc.errno in (errno.EBADF, errno.ESTALE):
                self._fd = None
            return False
        if self._failing_since_dropped is not None:
            with self._lock:
                lost, self._failing_since_dropped = self.dropped - self._failing_since_dropped, None
                self._warned_error = False  # a later outage is reported again
            logger.warning("[non-fatal] halo: writing %s again; %d span line(s) were not written "
                           "while it failed", self.path, lost)
        self.lines_written += lines
        self.bytes_written += len(data)
        if self.on_flush is not None:
            # Runs on the writer thread between flushes: it must be quick and must not
            # call back into this writer's flush/wait (that would wait on itself).
            try:
                self.on_flush(end)
            except Exception as exc:
                logger.warning("[non-fatal] halo: on_flush callback failed: %r", exc)
        return True

    def _report_error(self, exc: OSError) -> None:
        if not self._warned_error:
            self._warned_error = True
            logger.warning("[non-fatal] halo: cannot write %s: %s; span lines are counted as not "
                           "written until a write succeeds (tried with every batch)",
                           self.path, exc)

    def _failed_ticket(self, ticket: int) -> bool:
        with self._lock:
            return any(lo <= ticket <= hi for lo, hi in self._failed)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:  # e.g. a delayed write error reported at close (NFS)
                self._report_error(exc)

    def _after_fork_in_child(self) -> None:
        # The parent's queued lines are the parent's to write; the child starts clean.
        # The inherited fd shares the parent's open file description, hence its
        # flock: close our copy and reopen on first write.
        self._close_fd()
        self._init_state()

    def __repr__(self) -> str:
        return (f"JsonlWriter({self.path!r}, fsync={self.fsync!r}, lines_written={self.lines_written}, "
                f"dropped={self.dropped})")


_LIVE: "weakref.WeakSet[JsonlWriter]" = weakref.WeakSet()


def _flush_all_at_exit() -> None:
    for writer in list(_LIVE):
        try:
            writer.shutdown(timeout=5.0)
        except Exception as exc:  # never turn interpreter exit into a traceback
            logger.warning("[non-fatal] halo: flush at exit failed for %s: %r", writer.path, exc)


def _reinit_after_fork() -> None:
    for writer in list(_LIVE):
        writer._after_fork_in_child()


atexit.register(_flush_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
