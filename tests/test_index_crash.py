"""A catch-up killed with SIGKILL at any point, then resumed, equals a build from scratch;
two processes catching up the same index at once give the same index as one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from halo_live.indexer import TraceIndex
from tests._index_helpers import build, dump, odd_lines, write_dataset

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys
import halo_live.indexer.index
from halo_live.indexer import TraceIndex
path, index_dir, chunk, workers, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if mode == "nolock":  # race for real: only the in-transaction checkpoint check guards
    halo_live.indexer.index._CatchUpLock.__enter__ = lambda self: self._thread_lock.acquire()
    halo_live.indexer.index._CatchUpLock.__exit__ = lambda self, *exc: self._thread_lock.release()

def progress(done, total):
    print(done, total, flush=True)
    if mode == "step":  # lockstep with the parent: wait for its go after each committed batch
        if not sys.stdin.readline():
            raise SystemExit(3)

idx = TraceIndex.open(path, index_dir, chunk_bytes=chunk, commit_bytes=chunk, workers=workers,
                      pool_min_bytes=0)
idx.catch_up(progress)
print("done", flush=True)
"""


def _child(path: Path, index_dir: Path, chunk: int, workers: int, mode: str = "free") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(index_dir), str(chunk), str(workers),
                             mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


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


CHUNK = 16_000  # ~500 batches in the dataset: far more than any kill point below


def _kill_mid_catch_up(child: subprocess.Popen, kill_after: int, where: str) -> None:
    """SIGKILL the lockstepped child after its `kill_after`-th committed batch.

    "between": while it waits for our go right after that commit. "inside": just
    after letting it go, so the kill lands somewhere in the next batch (parsing,
    in the pool, or inside the write transaction). Either way the catch-up cannot
    have finished: the child stops again at its next report, and batches remain.
    """
    for i in range(kill_after):
        done, total = (int(x) for x in child.stdout.readline().split())
        assert done < total, "the dataset is too small for this kill point"
        if i < kill_after - 1 or where == "inside":
            child.stdin.write("go\n")
            child.stdin.flush()
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdin.close()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("kill_after", "workers", "where"),
                         [(1, 1, "between"), (1, 1, "inside"), (7, 1, "inside"), (25, 1, "between"),
                          (4, 2, "inside"), (9, 2, "between")])
def test_sigkill_mid_catch_up_then_resume_equals_scratch(dataset, scratch, tmp_path, kill_after, workers, where):
    index_dir = tmp_path / "idx"
    _kill_mid_catch_up(_child(dataset, index_dir, CHUNK, workers, "step"), kill_after, where)
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
    children = [_child(dataset, index_dir, CHUNK, 1, lock) for _ in range(2)]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0 and out.strip().endswith("done")
    idx = TraceIndex.open(dataset, index_dir)
    assert dump(idx) == scratch
    idx.close()


FULL_DISK_CHILD = """
import resource, signal, sys
from halo_live.cli import main
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
