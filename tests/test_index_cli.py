"""`halo index`: one catch-up and a one-line summary; `--follow` until SIGTERM; clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from indexer import TraceIndex
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


def test_follow_keeps_the_index_current_until_sigterm(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(span_line("first", "a"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "index", str(path), "--follow"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert "1 traces" in proc.stdout.readline()
        assert proc.stdout.readline().startswith("following ")
        path.open("ab").write(span_line("second", "b"))
        assert "+1 spans" in proc.stdout.readline()
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
