"""`TraceIndex`: open an index beside a dataset, catch it up, follow it, read snapshots.

Catch-up parses new complete lines outside any transaction (in a process pool
for big backlogs), then commits each batch in one write transaction together
with the file's checkpoint. The checkpoint is re-checked inside that
transaction: if another process got there first, the batch is dropped and the
work re-planned, so any number of processes may catch up at once.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb
import orjson

from halo_live.indexer import dataset as ds
from halo_live.indexer import durability
from halo_live.indexer import layout as L
from halo_live.indexer import repair
from halo_live.indexer.apply import BatchWriter
from halo_live.indexer.models import CatchUpStats
from halo_live.indexer.parse import Batch
from halo_live.indexer.pool import POOL_MIN_BYTES, parse_batches
from halo_live.indexer.snapshot import Snapshot

# JSONL indexed between two unmappings of the index's pages: every batch of a big build.
# The writer's random reads (a trace-id lookup per new trace, B-tree paths) fault in
# pages with their neighbours; at 500k traces each 8 MB of input left 20 to 25 MB of
# the map resident. Unmapping after each 6 MB range keeps the build's peak RSS at 58
# to 64 MB for about 1 CPU-s over 12.5M spans (bench/bench_index.py; docs/performance.md).
RELEASE_BYTES = 4 << 20
# A range parsed as one batch: its bytes are in a parse worker's read buffer at once, and
# its traces' pages are what the writer maps between two unmappings (above).
CHUNK_BYTES = 6 << 20
log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class IndexStorageError(RuntimeError):
    """The index could not be written (e.g. the disk is full); the index stays usable."""


class _Retry(Exception):
    """Another writer moved a checkpoint under us: re-plan."""


_ENVS: dict[Path, list] = {}  # index dir -> [env, dbs, refcount, catch-up lock, marker]: one env per process
_ENVS_LOCK = threading.Lock()
LOCK_FILE = "catch-up.lock"


class _CatchUpLock:
    """One catch-up at a time per index: a thread lock inside the process, `flock` across.

    Correctness never depends on it (checkpoints are re-checked inside each write
    transaction); it saves a second process from parsing the same backlog only to
    throw it away. The kernel drops a killed holder's lock.
    """

    def __init__(self, index_dir: Path) -> None:
        self._thread_lock = threading.Lock()
        self._fd = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a filesystem without flock: fall back to the transactional re-check

    def __exit__(self, *exc) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError:
            pass
        self._thread_lock.release()

    def wait_in_process(self) -> None:
        """Wait for a catch-up in another thread of this process (not in other processes)."""
        with self._thread_lock:
            pass

    def close(self) -> None:
        os.close(self._fd)


def _acquire_env(index_dir: Path):
    key = index_dir.resolve()
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            env, dbs = repair.open_checked(index_dir, LOCK_FILE)
            entry = _ENVS[key] = [env, dbs, 0, _CatchUpLock(index_dir), durability.Marker(index_dir)]
        entry[2] += 1
        return entry[0], entry[1], entry[3], entry[4]


def _release_env(index_dir: Path) -> None:
    key = index_dir.resolve()
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] <= 0:
            try:
                entry[4].remove(entry[0])
            except lmdb.Error as exc:  # the marker stays: after a machine stop the index is rebuilt
                log.warning("halo index: cannot sync %s: %s", index_dir, exc)
            entry[0].close()
            entry[3].close()
            del _ENVS[key]


class TraceIndex:
    """A streaming LMDB index over one JSONL file or a folder/glob of shards."""

    def __init__(self, dataset: ds.Dataset, index_dir: Path, *, workers: int | None = None,
                 chunk_bytes: int = CHUNK_BYTES, commit_bytes: int = 32 << 20,
                 pool_min_bytes: int = POOL_MIN_BYTES) -> None:
        self.dataset = dataset
        self.index_dir = index_dir
        self.workers = workers
        self.chunk_bytes = chunk_bytes
        self.commit_bytes = commit_bytes  # parse in chunks, commit a few chunks at a time
        self.pool_min_bytes = pool_min_bytes
        # Handles on one index share its environment and a lock, so two threads of a
        # process (a follower and a query) never parse the same bytes twice.
        self._env, self._dbs, self._write_lock, self._marker = _acquire_env(index_dir)
        self._wake = threading.Event()
        self._watcher = None
        self._closed = False
        self._unreleased = 0  # bytes indexed since the index's pages were last unmapped
        self._unsynced = False  # committed since this handle's last sync

    @classmethod
    def open(cls, path: str | os.PathLike[str], index_dir: str | os.PathLike[str] | None = None,
             **options) -> TraceIndex:
        """Open (creating if needed) the index of `path`; does not catch up."""
        dataset = ds.resolve(path)
        where = Path(index_dir) if index_dir is not None else dataset.default_index_dir()
        return cls(dataset, where, **options)

    def close(self) -> None:
        """Release the environment; safe to call twice."""
        if not self._closed:
            self._closed = True
            self.notify()
            self._write_lock.wait_in_process()  # a catch-up in another thread stops at its next commit
            _release_env(self.index_dir)

    def __enter__(self) -> TraceIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def snapshot(self) -> Snapshot:
        """A consistent read view; keep it short (`with idx.snapshot() as snap:`)."""
        return Snapshot(self._env, self._dbs, self.dataset.root)

    def notify(self) -> None:
        """Hint that a file grew (e.g. from the writer's on_flush): wakes `follow()`."""
        self._wake.set()
        watcher = self._watcher
        if watcher is not None:
            watcher.poke()

    # --- catch-up --------------------------------------------------------------------
    def catch_up(self, progress: Progress | None = None) -> CatchUpStats:
        """Index every complete line added since the checkpoint; returns what was done."""
        if self._closed:
            raise RuntimeError("the index is closed")
        started = time.monotonic()
        stats = CatchUpStats()
        # A catch-up makes many short-lived objects and no cycles: the cyclic collector
        # would only walk them (9 % of a cold build's writer time), and so would a
        # collection between commits (a 50k-trace build's 79 found nothing). It runs again after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self._write_lock:
                try:
                    for _ in range(100):
                        try:
                            self._catch_up_once(stats, progress)
                            break
                        except _Retry:
                            continue
                finally:
                    self._sync()
        finally:
            if collecting:
                gc.enable()
        stats.seconds = time.monotonic() - started
        return stats

    def _checkpoints(self) -> dict[str, tuple[int, dict]]:
        txn = L.begin_read(self._env)
        try:
            return L.checkpoints(txn, self._dbs)
        finally:
            txn.abort()

    def _identities(self, rels: list[str]) -> dict[str, ds.FileIdentity | None]:
        return {rel: ds.identity(self.dataset.path_of(rel)) for rel in rels}

    def _stale(self, cps: dict[str, tuple[int, dict]],
               idents: dict[str, ds.FileIdentity | None]) -> str | None:
        """Why the index no longer matches the files (None when it does)."""
        for rel, (_, cp) in cps.items():
            ident = idents.get(rel)
            if ident is None:
                return f"{rel} disappeared"
            if (ident.dev, ident.ino) != (cp["dev"], cp["ino"]):
                return f"{rel} was replaced"
            if ident.size < cp["offset"]:
                return f"{rel} was truncated"
            if cp["head_n"] and ds.head_hash(self.dataset.path_of(rel), cp["head_n"]) != cp["head_hash"]:
                return f"{rel} was rewritten"
        return None

    def _catch_up_once(self, stats: CatchUpStats, progress: Progress | None) -> None:
        files = self.dataset.files()
        cps = self._checkpoints()
        # One stat per file per round, after the checkpoints: a file that only grows is then
        # at least as long as another process's committed offset, never "truncated".
        idents = self._identities(files)
        reason = self._stale(cps, idents)
        if reason:
            self._reset(reason)
            stats.reset = True
            raise _Retry
        stats.files = len(files)
        missing = [rel for rel in files if rel not in cps]
        if missing:
            self._register(missing)
            raise _Retry
        plan: list[tuple[str, int, int, int]] = []
        for rel in files:
            fileno, cp = cps[rel]
            ident = idents[rel]
            if ident is not None and ident.size > cp["offset"]:
                plan.append((rel, fileno, cp["offset"], ident.size))
        total = sum(end - start for _, _, start, end in plan)
        done = 0
        rel_of = {fileno: rel for rel, (fileno, _) in cps.items()}
        for rel, fileno, start, end in plan:
            path = self.dataset.path_of(rel)
            ranges = ds.line_ranges(path, start, end, self.chunk_bytes)
            consumed = ranges[-1][1] if ranges else start
            stats.pending_bytes += end - consumed
            batches = parse_batches(str(path), fileno, ranges, self.workers, self.pool_min_bytes)
            try:
                while not self._closed:
                    moved = self._commit(batches, rel_of, stats)
                    if not moved:
                        break
                    done += moved
                    if progress is not None:
                        progress(done, total)
            finally:
                batches.close()
            if self._closed:
                return
        if progress is not None:
            progress(total, total)

    def _commit(self, batches: Iterator[Batch], rel_of: dict[int, str], stats: CatchUpStats) -> int:
        """Apply the next batches of one file and advance its checkpoint, in one transaction.

        Each batch is applied as it arrives, so the parse workers go on while this
        process writes; the transaction commits once `commit_bytes` are in (or the
        batches end). Returns the bytes committed, 0 when there were no batches left.
        """
        first = next(batches, None)
        if first is None:
            return 0
        group = [first]  # kept to replay if the transaction must start over (map full)
        fileno = first.fileno
        path = self.dataset.path_of(rel_of[fileno])

        def body(txn):
            key = L.u32(fileno)
            cp = orjson.loads(txn.get(key, db=self._dbs["files"]) or b"null")
            if cp is None or cp["offset"] != group[0].start:
                raise _Retry  # another writer indexed these bytes already
            ident = ds.identity(path)
            if ident is None or (ident.dev, ident.ino) != (cp["dev"], cp["ino"]):
                raise _Retry  # replaced meanwhile: the next round resets
            writer = BatchWriter(txn, self._dbs, rel_of, time.time(), read_line)
            for batch in group:
                writer.apply(batch)
                self._release_pages(batch.end - batch.start)
            while group[-1].end - group[0].start < self.commit_bytes and not self._closed:
                batch = next(batches, None)
                if batch is None:
                    break
                group.append(batch)
                writer.apply(batch)
                self._release_pages(batch.end - batch.start)
            writer.finish()
            cp["offset"] = group[-1].end
            if cp["head_n"] < ds.HEAD_BYTES:
                cp["head_n"] = min(ds.HEAD_BYTES, cp["offset"])
                cp["head_hash"] = ds.head_hash(path, cp["head_n"])
            txn.put(key, orjson.dumps(cp), db=self._dbs["files"])
            return writer.new_traces, writer.duplicates

        def read_line(fileno_: int, offset: int, length: int) -> bytes:
            with open(self.dataset.path_of(rel_of[fileno_]), "rb") as fh:
                return os.pread(fh.fileno(), length, offset)

        new_traces, duplicates = self._write(body)
        stats.new_traces += new_traces
        stats.duplicates += duplicates
        stats.spans -= duplicates - sum(batch.duplicates for batch in group)  # repeats met in the index
        stats.batches += 1
        for batch in group:
            stats.bytes_read += batch.end - batch.start
            stats.lines += batch.lines
            stats.spans += batch.spans
            stats.bad_lines += batch.bad_count
        return group[-1].end - group[0].start

    def _release_pages(self, nbytes: int) -> None:
        """Unmap the index's pages every RELEASE_BYTES of input (also inside an open write
        transaction: its dirty pages are not in the map, and a read page faults back in)."""
        self._unreleased += nbytes
        if self._unreleased >= RELEASE_BYTES:  # a big build: keep RSS to what we use
            self._unreleased = 0
            L.release_mapped_pages(self.index_dir)

    def _register(self, rels: list[str]) -> None:
        def body(txn):
            files = self._dbs["files"]
            known = L.checkpoints(txn, self._dbs)
            with txn.cursor(db=files) as cur:
                next_no = L.un32(cur.key()) + 1 if cur.last() else 0
            for rel in rels:
                if rel in known:
                    continue
                ident = ds.identity(self.dataset.path_of(rel))
                if ident is None:
                    continue
                cp = {"rel": rel, "dev": ident.dev, "ino": ident.ino, "offset": 0,
                      "head_n": 0, "head_hash": ""}
                txn.put(L.u32(next_no), orjson.dumps(cp), db=files)
                next_no += 1

        self._write(body)

    def _reset(self, reason: str) -> None:
        log.warning("halo index: %s; re-indexing from scratch", reason)

        def body(txn):
            # Re-check inside the transaction: another process may have reset already.
            if not self._stale(L.checkpoints(txn, self._dbs), self._identities(self.dataset.files())):
                return
            for name, db in self._dbs.items():
                txn.drop(db, delete=False)
            txn.put(b"schema", L.SCHEMA, db=self._dbs["meta"])
            txn.put(b"ordered", b"1", db=self._dbs["meta"])

        self._write(body)

    def _sync(self) -> None:
        """What this catch-up committed, to the disk (one flush, not one per commit)."""
        if self._unsynced:
            self._unsynced = False
            try:
                self._env.sync(True)
            except lmdb.Error as exc:
                raise IndexStorageError(f"cannot sync the index in {self.index_dir}: {exc}") from exc

    def _write(self, body):
        """Run `body(txn)` in one write transaction, growing the map when it is full."""
        try:
            self._marker.place()
        except OSError as exc:
            raise IndexStorageError(f"cannot write the index in {self.index_dir}: {exc}") from exc
        self._unsynced = not durability.SYNC_EACH_COMMIT
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    return body(txn)
            except lmdb.MapFullError:
                L.grow(self._env)
            except lmdb.MapResizedError:
                L.adopt_map_size(self._env)
            except lmdb.Error as exc:  # e.g. a full disk: the transaction was aborted
                raise IndexStorageError(
                    f"cannot write the index in {self.index_dir} (disk full?): {exc}") from exc

    # --- follow ----------------------------------------------------------------------
    def follow(self, stop: threading.Event, *, on_update: Callable[[CatchUpStats], None] | None = None,
               poll_interval: float = 0.1) -> None:
        """Keep the index current until `stop` is set (polls stat; `notify()` wakes it early).

        `poll_interval` is capped at 0.1 s: the wait does not see `stop`, so the cap bounds
        how long a set `stop` goes unnoticed.
        """
        from halo_live.indexer.follow import Watcher

        last: tuple | None = None
        failed = ""
        with Watcher(self.dataset, self._wake) as watcher:
            self._watcher = watcher
            while not stop.is_set() and not self._closed:
                seen = watcher.fingerprint()
                if seen != last:
                    try:
                        stats = self.catch_up()
                    except Exception as exc:  # never fatal: say so (once) and retry next round
                        message = f"{type(exc).__name__}: {exc}"
                        if message != failed:
                            log.error("halo index: catch-up failed: %s", message)
                        failed = message
                    else:
                        failed = ""
                        last = seen if stats.pending_bytes == 0 else None
                        if on_update is not None and (stats.spans or stats.reset or stats.bad_lines):
                            on_update(stats)
                watcher.wait(min(poll_interval, 0.1), stop)
            self._watcher = None
