"""JsonlWriter: whole lines from many processes, healing, drops, fsync, lifecycle."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from halo_live.exporter import config
from halo_live.exporter.writer import JsonlWriter
from tests._exporter_helpers import read_lines

ROOT = Path(__file__).resolve().parents[1]


def line(**fields) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def run_python(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_six_processes_append_70kb_lines_without_tearing(tmp_path):
    path = tmp_path / "shared.jsonl"
    code = """
        import json, sys
        from halo_live.exporter.writer import JsonlWriter
        path, proc = sys.argv[1], int(sys.argv[2])
        w = JsonlWriter(path, flush_interval=0.005)
        pad = "x" * 70_000
        for seq in range(100):
            w.submit([json.dumps({"proc": proc, "seq": seq, "pad": pad}).encode() + b"\\n"])
        w.shutdown()
        assert w.dropped == 0 and w.lines_written == 100, (w.dropped, w.lines_written)
    """
    procs = [run_python(code, str(path), str(i)) for i in range(6)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    lines = read_lines(path)  # every line parses
    seen = sorted((x["proc"], x["seq"]) for x in lines)
    assert seen == [(p, s) for p in range(6) for s in range(100)]  # none missing, none twice
    assert all(len(x["pad"]) == 70_000 for x in lines)


def test_half_line_left_by_a_crash_is_healed(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(a=1) + b'{"torn": "by a cra')
    w = JsonlWriter(path)
    w.wait(w.submit([line(b=2), line(c=3)]))
    w.shutdown()
    raw = path.read_bytes().splitlines()
    assert raw[1] == b'{"torn": "by a cra'  # kept on its own line, which readers skip
    assert [json.loads(x) for x in (raw[0], raw[2], raw[3])] == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_clean_file_gets_no_blank_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(a=1))
    w = JsonlWriter(path)
    w.submit([line(b=2)])
    w.shutdown()
    assert path.read_bytes() == line(a=1) + line(b=2)


def test_missing_newline_is_added(tmp_path):
    path = tmp_path / "t.jsonl"
    w = JsonlWriter(path)
    w.submit([b'{"a":1}', line(b=2)])
    w.shutdown()
    assert read_lines(path) == [{"a": 1}, {"b": 2}]


def test_wait_returns_once_the_lines_are_in_the_file(tmp_path):
    path = tmp_path / "t.jsonl"
    w = JsonlWriter(path, flush_interval=60)  # only the wait itself can trigger the write
    ticket = w.submit([line(n=1)])
    assert w.wait(ticket, timeout=10)
    assert read_lines(path) == [{"n": 1}]
    assert w.lines_written == 1 and w.bytes_written == len(line(n=1))
    w.shutdown()


def test_full_queue_blocks_then_counts_and_warns(tmp_path, caplog):
    path = tmp_path / "t.jsonl"
    release = threading.Event()
    stalled = threading.Event()

    def on_flush(offset: int) -> None:  # holds the worker inside its first flush
        stalled.set()
        release.wait(30)

    w = JsonlWriter(path, max_queue_lines=2, block_timeout=0.05, flush_interval=0.01, on_flush=on_flush)
    w.submit([line(n=0)])
    assert stalled.wait(10)
    assert w.submit([line(n=1)]) is not None
    assert w.submit([line(n=2)]) is not None
    with caplog.at_level(logging.WARNING, logger="halo_live.exporter.writer"):
        assert w.submit([line(n=3)]) is None  # blocked 50 ms, then refused
        assert w.submit([line(n=4)], timeout=0) is None
    assert w.dropped == 2
    assert "dropped" in caplog.text
    release.set()
    w.shutdown()
    assert [x["n"] for x in read_lines(path)] == [0, 1, 2]


def test_on_flush_reports_end_offsets(tmp_path):
    path = tmp_path / "t.jsonl"
    offsets: list[int] = []
    w = JsonlWriter(path, on_flush=offsets.append)
    w.wait(w.submit([line(n=1)]))
    w.wait(w.submit([line(n=2), line(n=3)]))
    w.shutdown()
    assert offsets == sorted(offsets) and offsets[-1] == path.stat().st_size
    assert offsets[0] == len(line(n=1))


@pytest.mark.parametrize("policy, syncs", [("never", False), ("batch", True), ("always", True)])
def test_fsync_policy(tmp_path, monkeypatch, policy, syncs):
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    w = JsonlWriter(tmp_path / "t.jsonl", fsync=policy)
    assert w.wait(w.submit([line(n=1)]), timeout=10)
    w.shutdown()
    assert bool(calls) is syncs


def test_fsync_from_environment_and_bad_values(tmp_path, monkeypatch):
    monkeypatch.setenv(config.HALO_FSYNC, "always")
    assert JsonlWriter(tmp_path / "a.jsonl").fsync == "always"
    monkeypatch.setenv(config.HALO_FSYNC, "sometimes")
    with pytest.raises(ValueError, match="HALO_FSYNC"):
        JsonlWriter(tmp_path / "b.jsonl")
    with pytest.raises(ValueError, match="fsync"):
        JsonlWriter(tmp_path / "c.jsonl", fsync="sometimes")
    with pytest.raises(ValueError):
        JsonlWriter(tmp_path / "d.jsonl", fsync="never", flush_interval=0)


def test_default_path_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(config.HALO_TRACES_PATH, str(tmp_path / "env.jsonl"))
    w = JsonlWriter()
    w.submit([line(n=1)])
    w.shutdown()
    assert read_lines(tmp_path / "env.jsonl") == [{"n": 1}]


def test_missing_folders_of_the_path_are_created(tmp_path):
    path = tmp_path / "traces" / "w1" / "t.jsonl"
    w = JsonlWriter(path)
    assert w.wait(w.submit([line(n=1)]), timeout=10)
    w.shutdown()
    assert read_lines(path) == [{"n": 1}]


def test_shutdown_twice_and_submit_after_shutdown(tmp_path):
    w = JsonlWriter(tmp_path / "t.jsonl")
    w.submit([line(n=1)])
    w.shutdown()
    w.shutdown()
    assert w.submit([line(n=2)]) is None
    assert w.dropped == 1
    assert read_lines(tmp_path / "t.jsonl") == [{"n": 1}]


def test_no_thread_until_first_submit(tmp_path):
    w = JsonlWriter(tmp_path / "t.jsonl")
    assert w._thread is None and not (tmp_path / "t.jsonl").exists()
    w.shutdown()


def test_interpreter_exit_flushes_a_forgotten_writer(tmp_path):
    path = tmp_path / "t.jsonl"
    p = run_python("""
        import sys
        from halo_live.exporter.writer import JsonlWriter
        w = JsonlWriter(sys.argv[1], flush_interval=3600)
        w.submit([b'{"n": 1}\\n', b'{"n": 2}\\n'])
    """, str(path))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert read_lines(path) == [{"n": 1}, {"n": 2}]


def test_forked_child_writes_its_own_lines_only(tmp_path):
    path = tmp_path / "t.jsonl"
    p = run_python("""
        import os, sys
        from halo_live.exporter.writer import JsonlWriter
        w = JsonlWriter(sys.argv[1], flush_interval=3600)
        w.submit([b'{"who": "parent-before"}\\n'])
        pid = os.fork()
        if pid == 0:
            w.submit([b'{"who": "child"}\\n'])
            w.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        w.submit([b'{"who": "parent-after"}\\n'])
        w.shutdown()
    """, str(path))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert sorted(x["who"] for x in read_lines(path)) == ["child", "parent-after", "parent-before"]


def test_deferred_items_are_encoded_on_the_worker(tmp_path):
    w = JsonlWriter(tmp_path / "t.jsonl")
    w.submit([lambda: line(n=1), lambda: None, lambda: 1 / 0])  # None and a crash: counted, not raised
    w.shutdown()
    assert read_lines(tmp_path / "t.jsonl") == [{"n": 1}]
    assert w.dropped == 2
