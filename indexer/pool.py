"""Parse byte ranges in order, on worker processes when the backlog is big enough to pay.

Workers are plain `python -m halo_live.indexer.worker` subprocesses speaking pickled
frames over pipes: no fork (an LMDB environment must never cross one, and the
caller may have threads), no re-import of the caller's `__main__` (which
multiprocessing's spawn needs). Workers only parse; the caller commits the
batches in file order. Ranges are dealt round-robin and each worker answers in
order, so results are read back in submission order; at most three ranges per
worker are in flight (two left a 33 GB build's writer 4 s waiting on direct reads),
which bounds memory.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Iterator

from halo_live.indexer.parse import Batch, parse_file_range

POOL_MIN_BYTES = 48 << 20  # below this, starting workers costs more than it saves
IN_FLIGHT = 3  # ranges per worker
PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process
_LEN = struct.Struct(">Q")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def recv(stream):
    head = stream.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError("worker closed its pipe")
    (n,) = _LEN.unpack(head)
    return pickle.loads(stream.read(n))


def _widen(pipe) -> None:
    """Let a worker write a whole answer (a few hundred KB) without waiting for us to read it.

    With the default 64 KB pipe, a worker finishing a batch while this process is busy
    applying the previous one stalls until we read; then it cannot start its next range.
    """
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


class WorkerError(RuntimeError):
    """A parse worker died or failed."""


def parse_batches(path: str, fileno: int, ranges: list[tuple[int, int]],
                  workers: int | None = None, min_bytes: int = POOL_MIN_BYTES) -> Iterator[Batch]:
    """Yield the parse of each range, in order (pooled when there are `min_bytes` or more)."""
    workers = default_workers() if workers is None else workers
    total = sum(end - start for start, end in ranges)
    if workers <= 1 or len(ranges) < 2 or total < min_bytes:
        for start, end in ranges:
            yield parse_file_range(path, fileno, start, end)
        return
    yield from _pooled(path, fileno, ranges, min(workers, len(ranges)))


def _pooled(path: str, fileno: int, ranges, n: int) -> Iterator[Batch]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    procs = [subprocess.Popen([sys.executable, "-m", "halo_live.indexer.worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env) for _ in range(n)]
    for proc in procs:
        _widen(proc.stdout)
    try:
        inflight: deque[int] = deque()
        it = iter(enumerate(ranges))

        def submit() -> bool:
            item = next(it, None)
            if item is None:
                return False
            i, (start, end) = item
            send(procs[i % n].stdin, (path, fileno, start, end))
            inflight.append(i % n)
            return True

        for _ in range(IN_FLIGHT * n):
            if not submit():
                break
        while inflight:
            proc = procs[inflight.popleft()]
            try:
                result = recv(proc.stdout)
            except (EOFError, pickle.UnpicklingError) as exc:
                raise WorkerError(f"parse worker exited ({proc.poll()})") from exc
            if isinstance(result, BaseException):
                raise WorkerError(f"parse worker failed: {result!r}")
            submit()
            yield result
    finally:
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
