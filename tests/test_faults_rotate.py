"""Fault: the trace file is rotated, truncated in place or deleted under the writer and the index.

The writer always writes to a file at its path (a new one after a rotation by
rename or a deletion; the same, now shorter, one after copytruncate), and the
index notices the change and re-indexes: its answers equal a fresh index of
what is on disk.
"""

from __future__ import annotations

import os
import shutil

import pytest

from halo_live.engine.tools import open_store, run_tool
from halo_live.exporter.writer import JsonlWriter
from tests._fault_helpers import answers, span_ids_on_disk
from tests._index_helpers import span_line


def _lines(first: int, traces: int, spans: int = 3) -> list[bytes]:
    out = []
    for t in range(first, first + traces):
        trace_id = f"{t:032x}"
        for s in range(spans):
            out.append(span_line(trace_id, f"{t:08x}{s:08x}", f"{t:08x}{0:08x}" if s else "",
                                 name=f"step {s}", error="boom" if (t + s) % 5 == 0 else None))
    return out


def _write(writer: JsonlWriter, lines: list[bytes]) -> None:
    assert writer.wait(writer.submit(lines), timeout=10)


@pytest.mark.parametrize("how", ["rename", "rename-and-create", "copytruncate", "delete"])
def test_answers_equal_a_fresh_index_after_the_file_changes_under_writer_and_index(tmp_path, how):
    path = tmp_path / "traces.jsonl"
    rotated = tmp_path / "traces.jsonl.1"
    writer = JsonlWriter(path, flush_interval=0.05)
    try:
        _write(writer, _lines(0, 10))
        store = open_store(path, tmp_path / "live-index")  # indexes the first 10 traces
        assert run_tool(store, "count_traces", {})["result"]["total"] == 10
        if how.startswith("rename"):
            os.rename(path, rotated)
            if how == "rename-and-create":  # logrotate's `create`
                path.touch()
        elif how == "copytruncate":
            shutil.copyfile(path, rotated)
            os.truncate(path, 0)
        else:
            os.unlink(path)
        _write(writer, _lines(10, 4))
        assert run_tool(store, "count_traces", {})["result"]["total"] == 4
        store.close()
    finally:
        writer.shutdown(10)
    # The writer went on at its path; what was rotated away is whole in the rotated file.
    assert sorted(span_ids_on_disk(path)) == sorted(f"{t:08x}{s:08x}" for t in range(10, 14) for s in range(3))
    if how != "delete":
        assert len(span_ids_on_disk(rotated)) == 30
    live = answers(path, tmp_path / "live-index")
    fresh = answers(path, tmp_path / "fresh-index")
    assert live == fresh
    assert live["count"]["result"]["total"] == 4


def test_a_folder_dataset_keeps_a_rotated_shard_out_and_re_indexes_the_new_one(tmp_path):
    folder = tmp_path / "traces"
    path = folder / "run.jsonl"
    writer = JsonlWriter(path, flush_interval=0.05)
    try:
        _write(writer, _lines(0, 6))
        store = open_store(folder)
        os.rename(path, folder / "run.jsonl.1")  # no longer a *.jsonl shard of the folder
        _write(writer, _lines(6, 2))
        assert run_tool(store, "count_traces", {})["result"]["total"] == 2
        store.close()
    finally:
        writer.shutdown(10)
    assert answers(folder, folder / ".halo-index") == answers(folder, tmp_path / "fresh")


def test_halo_serve_writes_to_its_path_again_after_a_rotation_and_its_index_follows(tmp_path):
    from tests._fault_helpers import ServeProcess, otlp_request, post_http, span_ids

    out = tmp_path / "traces.jsonl"
    serve = ServeProcess(out, "--agent-wait", "0")
    try:
        assert post_http(serve.http_url, otlp_request(1))[0] == 200
        os.rename(out, tmp_path / "traces.jsonl.1")
        assert post_http(serve.http_url, otlp_request(2))[0] == 200
    finally:
        assert serve.terminate() == 0
    assert "Traceback" not in serve.stderr_text()
    assert span_ids_on_disk(out) == span_ids(2, 10)
    assert span_ids_on_disk(tmp_path / "traces.jsonl.1") == span_ids(1, 10)
    assert answers(out, tmp_path / "traces.jsonl.halo-index") == answers(out, tmp_path / "fresh")
