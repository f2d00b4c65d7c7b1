"""A journal of the spans `halo serve` acknowledged but holds for their agent's name.

`halo serve` answers success only once a span is on disk. A span held back for
its agent (`halo_live.exporter.lineage`) is put on disk here first, in a file
beside the trace file (`traces.jsonl` -> `traces.held-<pid>.ndjson`: not `.jsonl`,
so no reader takes it for spans): one `{"held": line}` record per held span, then a
`{"released": [span ids]}` record once its line is in the trace file. The file is
emptied whenever nothing is held. A server that starts (`recover`) writes the
spans a dead server left held (without their agent's name) into their trace
file, so a crash loses none. A live server keeps its journal locked (`flock`),
so a second server on the same folder leaves it alone.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson

from halo_live.exporter import canonical

MARK, SUFFIX = ".held-", ".ndjson"


def journal_path_for(trace_path: str | os.PathLike[str], pid: int | None = None) -> Path:
    """This process's journal beside a trace file: `traces.jsonl` -> `traces.held-<pid>.ndjson`
    (one per server, as several servers may append to one trace file)."""
    path = Path(trace_path)
    stem = path.name[:-len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{stem}{MARK}{os.getpid() if pid is None else pid}{SUFFIX}")


def _key(line: bytes) -> str:
    span = orjson.loads(line)
    return f"{span[canonical.TRACE_ID]}:{span[canonical.SPAN_ID]}"


class HeldJournal:
    """The journal of one server's trace file; `record` before acknowledging, `released` after."""

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = False) -> None:
        self.path = Path(path)
        self.sync = sync
        self._fd: int | None = None  # created with the first held span
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._early: set[str] = set()  # released by another request before this one recorded them

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # marks it a live server's
            except OSError:
                os.close(fd)
                raise OSError(f"{self.path} is in use by another process") from None
            self._fd = fd
        return self._fd

    def _append(self, records: list[bytes]) -> None:
        self._open()
        data = b"".join(records)
        while data:
            data = data[os.write(self._fd, data):]
        if self.sync:
            os.fsync(self._fd)

    def record(self, lines: Iterable[bytes]) -> None:
        """Put held lines on disk (raises OSError if they cannot be: do not acknowledge then)."""
        keyed = [(_key(line), line) for line in lines]
        with self._lock:
            early = self._early.intersection(k for k, _ in keyed)
            self._early -= early
            keyed = [(k, line) for k, line in keyed if k not in early]  # already in the trace file
            if not keyed:
                return
            self._append([orjson.dumps({"held": line.decode()}, option=orjson.OPT_APPEND_NEWLINE)
                          for _, line in keyed])
            self._pending.update(k for k, _ in keyed)

    def released(self, lines: Iterable[bytes]) -> None:
        """Note that these lines are now in the trace file; empty the journal when nothing is held."""
        keys = [_key(line) for line in lines]
        with self._lock:
            mine = [k for k in keys if k in self._pending]
            self._early.update(k for k in keys if k not in self._pending)
            if len(self._early) > 100_000:  # lines released unjournaled (wait 0 elsewhere): forget
                self._early.clear()
            if not mine:
                return
            self._pending.difference_update(mine)
            if self._pending:
                self._append([orjson.dumps({"released": mine}, option=orjson.OPT_APPEND_NEWLINE)])
            elif self._fd is not None:
                os.ftruncate(self._fd, 0)

    def close(self, *, remove: bool) -> None:
        """Unlock; with `remove` (nothing left held) delete the file too."""
        with self._lock:
            if self._fd is None:
                return
            if remove and not self._pending:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> list[bytes]:
    """The held lines not marked released, from a journal's records."""
    held: dict[str, bytes] = {}
    with os.fdopen(os.dup(fd), "rb") as f:
        for raw in f:
            try:
                record = orjson.loads(raw)
                if isinstance(record, dict) and isinstance(record.get("held"), str):
                    line = record["held"].encode()
                    held[_key(line)] = line
                elif isinstance(record, dict) and isinstance(record.get("released"), list):
                    for key in record["released"]:
                        held.pop(key, None)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a record cut by the crash was never acknowledged
    return list(held.values())


def _claim(path: str | os.PathLike[str]) -> int | None:
    """A locked descriptor on a dead server's journal; None if absent or a live one's."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def leftover(path: str | os.PathLike[str]) -> list[bytes] | None:
    """The lines a dead server left held in the journal at `path` (None if absent or a live one's)."""
    fd = _claim(path)
    if fd is None:
        return None
    try:
        return _read(fd)
    finally:
        os.close(fd)


def recover(trace_path: str | os.PathLike[str], write: Callable[[Path, list[bytes]], None]) -> int:
    """Write the spans dead servers left held beside `trace_path` (in its folder) into their
    trace files with `write(path, lines)`, then delete their journals; returns how many.

    Each journal stays locked until it is deleted, so two servers starting at once never
    both write it out."""
    count = 0
    for journal in sorted(Path(trace_path).parent.glob(f"*{MARK}*{SUFFIX}")):
        fd = _claim(journal)
        if fd is None:
            continue  # a live server's (or gone)
        try:
            lines = _read(fd)
            if lines:
                write(journal.with_name(journal.name.rpartition(MARK)[0] + ".jsonl"), lines)
                count += len(lines)
            journal.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return count
