"""`halo index`: one catch-up and a one-line summary; `--follow` until SIGTERM; clear errors."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from halo_live.cli import main
from halo_live.indexer import TraceIndex
from tests._index_helpers import span_line, write_dataset

ROOT = Path(__file__).resolve().parent.parent


def test_index_prints_one_summary_line(tmp_path, capsys):
    path = write_dataset(tmp_path / "t.jsonl", traces=3)
    path.open("ab").write(b"oops\n")
    assert main(["index", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "3 traces" in out[0] and "1 bad lines skipped" in out[0] and "t.jsonl.halo-index" in out[0]
    assert main(["index", str(path), "--index-dir", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "data.mdb").exists()


def test_missing_path_is_one_line_error(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"halo: error: no such trace file or folder: {tmp_path / 'nope.jsonl'}"]


def lines_of(proc: subprocess.Popen) -> queue.Queue:
    """The child's stdout lines as they come, so a test can wait for one with a timeout."""
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_follow_keeps_the_index_current_until_sigterm(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(span_line("first", "a"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "index", str(path), "--follow"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    out = lines_of(proc)
    try:
        # a child that never prints fails the test (queue.Empty) rather than hanging it
        assert "1 traces" in out.get(timeout=60)
        assert out.get(timeout=60).startswith("following ")
        path.open("ab").write(span_line("second", "b"))
        assert "+1 spans" in out.get(timeout=60)
        with TraceIndex.open(path) as idx, idx.snapshot() as snap:
            assert snap.trace("second") is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_deleted_file_empties_the_index(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=2)
    with TraceIndex.open(path, tmp_path / "idx") as idx:
        idx.catch_up()
        path.unlink()
        assert idx.catch_up().reset
        with idx.snapshot() as snap:
            assert snap.count() == 0 and snap.totals().total_spans == 0
        path.write_bytes(span_line("new", "n"))
        idx.catch_up()
        with idx.snapshot() as snap:
            assert snap.trace_ids() == ["new"]
