"""Fault: a damaged index (truncated, overwritten, another layout, left locked by a killed process).

Each is detected when the index is opened, said in one line, rebuilt from the
JSONL without the user doing anything, and the answers afterwards equal those
of a fresh index.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from halo_live.indexer import TraceIndex
from halo_live.indexer import durability
from halo_live.indexer import layout as L
from halo_live.indexer.dataset import INDEX_SUFFIX
from tests._fault_helpers import answers
from tests._index_helpers import write_dataset


@pytest.fixture
def indexed(tmp_path):
    """A 40-trace file with a built index beside it, and the answers of that index."""
    path = write_dataset(tmp_path / "traces.jsonl", traces=40)
    index_dir = tmp_path / ("traces.jsonl" + INDEX_SUFFIX)
    expected = answers(path, index_dir)
    assert expected["count"]["result"]["total"] == 40
    return path, index_dir, expected


def _truncate(index_dir):
    data = index_dir / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)


def _garbage(index_dir):
    data = index_dir / "data.mdb"
    data.write_bytes(random.Random(7).randbytes(data.stat().st_size))


def _garbage_head(index_dir):
    with open(index_dir / "data.mdb", "r+b") as fh:
        fh.write(random.Random(8).randbytes(8192))


def _garbage_lock(index_dir):
    (index_dir / "lock.mdb").write_bytes(random.Random(9).randbytes(8192))


def _newer_layout(index_dir):
    # In a process of its own, as a newer halo-live would be (one env per path per process).
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import lmdb
        env = lmdb.open({str(index_dir)!r}, max_dbs={len(L.DB_NAMES) + 1}, map_size={L.INITIAL_MAP_SIZE})
        with env.begin(write=True) as txn:
            txn.put(b"schema", b"halo-live-index/99", db=env.open_db(b"meta", txn=txn))
        """)], check=True, timeout=60)


DAMAGE = {"truncated": (_truncate, "truncated"), "garbage": (_garbage, "not an LMDB file"),
          "garbage-head": (_garbage_head, "not an LMDB file"),
          "garbage-lock-file": (_garbage_lock, None),  # LMDB re-initialises it: nothing to say
          "newer-layout": (_newer_layout, "halo-live-index/99")}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_index_is_rebuilt_on_open_with_one_clear_line(indexed, kind):
    path, index_dir, expected = indexed
    damage, said = DAMAGE[kind]
    damage(index_dir)
    proc = subprocess.run([sys.executable, "-m", "halo_live", "tool", "count_traces", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected["count"]
    assert "Traceback" not in proc.stderr
    if said is not None:
        assert said in proc.stderr and "rebuilding it from the JSONL" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert answers(path, index_dir) == expected
    again = subprocess.run([sys.executable, "-m", "halo_live", "tool", "count_traces", str(path)],
                           capture_output=True, text=True, timeout=120)
    assert again.stderr == ""  # repaired once, then quiet


HOLDER = textwrap.dedent("""
    import sys, time
    from halo_live.indexer import TraceIndex
    idx = TraceIndex.open(sys.argv[1])
    reader = idx._env.begin()          # a read transaction never ended
    writer = idx._env.begin(write=True, db=idx._dbs["meta"])  # and the writer's lock held
    writer.put(b"half-done", b"x")
    print("holding", flush=True)
    time.sleep(600)
""")


def _kill_once_it_says(script: str, path, word: str) -> int:
    """Run `script` on `path`, SIGKILL it once it prints `word`; its pid."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == word
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return proc.pid


def test_an_index_left_locked_by_a_killed_process_opens_and_answers(indexed):
    path, index_dir, expected = indexed
    _kill_once_it_says(HOLDER, path, "holding")
    with (path.parent / "more.jsonl").open("wb"):
        pass
    with open(path, "ab") as fh:  # the next writer must get the lock the dead one held
        fh.write(open(path, "rb").readline().replace(b'"trace_id":"', b'"trace_id":"new-', 1))
    idx = TraceIndex.open(path)
    try:
        stats = idx.catch_up()
        assert stats.spans == 1
        with idx.snapshot():
            pass
        assert idx._env.reader_check() == 0  # the dead reader's slot was cleared on open
    finally:
        idx.close()
    after = answers(path, index_dir)
    assert after == answers(path, path.parent / "fresh")
    assert after["count"]["result"]["total"] == expected["count"]["result"]["total"] + 1


# --- unsynced writes (indexer/durability.py) ---------------------------------------------

def _markers(index_dir):
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith(durability.PREFIX))


def test_a_writing_process_leaves_a_marker_of_this_boot_until_it_closes_the_index(tmp_path):
    path = write_dataset(tmp_path / "traces.jsonl", traces=20)
    idx = TraceIndex.open(path)
    try:
        assert _markers(idx.index_dir) == []  # opening writes nothing
        idx.catch_up()
        assert _markers(idx.index_dir) == [f"{durability.PREFIX}{os.getpid()}"]
        assert (idx.index_dir / _markers(idx.index_dir)[0]).read_text().strip() == durability.BOOT
    finally:
        idx.close()
    assert _markers(idx.index_dir) == []


def test_an_index_written_unsynced_when_the_machine_stopped_is_rebuilt_with_one_line(indexed):
    path, index_dir, expected = indexed
    # what a process writing the index leaves when the machine stops under it
    (index_dir / f"{durability.PREFIX}4242").write_text("0f0e0d0c-another-boot\n")
    proc = subprocess.run([sys.executable, "-m", "halo_live", "tool", "count_traces", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected["count"]
    assert "when the machine stopped" in proc.stderr and "rebuilding it from the JSONL" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _markers(index_dir) == []
    assert answers(path, index_dir) == expected


def test_a_killed_writers_marker_of_this_boot_keeps_the_index_and_goes(tmp_path):
    path = write_dataset(tmp_path / "traces.jsonl", traces=30)
    pid = _kill_once_it_says(textwrap.dedent("""
        import sys, time
        from halo_live.indexer import TraceIndex
        idx = TraceIndex.open(sys.argv[1])
        idx.catch_up()
        print("indexed", flush=True)
        time.sleep(600)
    """), path, "indexed")
    index_dir = path.parent / ("traces.jsonl" + INDEX_SUFFIX)
    assert _markers(index_dir) == [f"{durability.PREFIX}{pid}"]
    idx = TraceIndex.open(path)
    try:
        assert _markers(index_dir) == []  # the page cache had its writes: synced, then removed
        assert idx.catch_up().spans == 0  # nothing was rebuilt
    finally:
        idx.close()
    assert answers(path, index_dir) == answers(path, path.parent / "fresh")
