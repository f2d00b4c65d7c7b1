"""A catch-up killed with SIGKILL at any point, then resumed, equals a build from scratch;
two processes catching up the same index at once give the same index as one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from indexer import TraceIndex
from tests._index_helpers import build, dump, odd_lines, write_dataset

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys
import indexer.index
from indexer import TraceIndex
path, index_dir, chunk, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if sys.argv[5:] == ["nolock"]:  # race for real: only the in-transaction checkpoint check guards
    indexer.index._CatchUpLock.__enter__ = lambda self: self._thread_lock.acquire()
    indexer.index._CatchUpLock.__exit__ = lambda self, *exc: self._thread_lock.release()
idx = TraceIndex.open(path, index_dir, chunk_bytes=chunk, commit_bytes=chunk, workers=workers,
                      pool_min_bytes=0)
idx.catch_up(lambda done, total: print(done, flush=True))
print("done", flush=True)
"""


def _child(path: Path, index_dir: Path, chunk: int, workers: int, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(index_dir), str(chunk), str(workers),
                             *extra],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash")
    return write_dataset(root / "t.jsonl", traces=120, extra=odd_lines() + [b"garbage\n"])


@pytest.fixture(scope="module")
def scratch(dataset, tmp_path_factory) -> dict:
    idx = build(dataset, tmp_path_factory.mktemp("scratch") / "idx")
    try:
        return dump(idx)
    finally:
        idx.close()


@pytest.mark.parametrize(("kill_after", "workers"), [(1, 1), (7, 1), (25, 1), (4, 2)])
def test_sigkill_mid_catch_up_then_resume_equals_scratch(dataset, scratch, tmp_path, kill_after, workers):
    index_dir = tmp_path / "idx"
    child = _child(dataset, index_dir, 16_000, workers)
    for _ in range(kill_after):
        line = child.stdout.readline()
        assert line and line.strip() != "done", "catch-up finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    idx = TraceIndex.open(dataset, index_dir)
    with idx.snapshot() as snap:  # a consistent prefix: usable before resuming
        partial = snap.count()
        assert 0 < partial <= len(scratch["order"])
        assert snap.totals().total_spans == sum(snap.trace(t).span_count for t in snap.trace_ids())
    idx.catch_up()
    assert dump(idx) == scratch
    idx.close()


@pytest.mark.parametrize("lock", ["flock", "nolock"])
def test_two_processes_catching_up_at_once_equal_one(dataset, scratch, tmp_path, lock):
    index_dir = tmp_path / "idx"
    children = [_child(dataset, index_dir, 16_000, 1, lock) for _ in range(2)]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0 and out.strip().endswith("done")
    idx = TraceIndex.open(dataset, index_dir)
    assert dump(idx) == scratch
    idx.close()


FULL_DISK_CHILD = """
import resource, signal, sys
from engine.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
sys.exit(main(["index", sys.argv[1], "--index-dir", sys.argv[2]]))
"""


def test_full_disk_is_one_clear_error_and_leaves_a_usable_index(dataset, scratch, tmp_path):
    index_dir = tmp_path / "idx"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(dataset), str(index_dir), str(600_000)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("halo: error: cannot write the index in ")
    assert len(done.stderr.strip().splitlines()) == 1
    idx = TraceIndex.open(dataset, index_dir)
    with idx.snapshot() as snap:
        snap.totals()  # readable: some consistent prefix (possibly empty)
    idx.catch_up()
    assert dump(idx) == scratch
    idx.close()
