"""The streaming index: catch-up, checkpoints, bad lines, replaced files, shards, filters."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest

from halo_live.indexer import IndexFilters, TraceIndex, layout
from tests._index_helpers import build, dump, odd_lines, span_line, write_dataset


def test_catch_up_twice_changes_nothing(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=20)
    idx = build(path, tmp_path / "idx")
    before = dump(idx)
    stats = idx.catch_up()
    assert (stats.spans, stats.bytes_read, stats.batches) == (0, 0, 0)
    assert dump(idx) == before
    idx.close()


def test_default_index_dirs(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=2)
    with TraceIndex.open(path) as idx:
        assert idx.index_dir == tmp_path / "t.jsonl.halo-index"
    folder = tmp_path / "shards"
    folder.mkdir()
    with TraceIndex.open(folder) as idx:
        assert idx.index_dir == folder / ".halo-index"


def test_partial_last_line_waits_for_its_end(tmp_path):
    path = tmp_path / "t.jsonl"
    whole = span_line("t1", "s1") + span_line("t1", "s2", "s1")
    path.write_bytes(whole[:-30])
    idx = TraceIndex.open(path, tmp_path / "idx")
    stats = idx.catch_up()
    assert stats.spans == 1 and stats.pending_bytes > 0 and stats.bad_lines == 0
    with open(path, "ab") as fh:
        fh.write(whole[-30:])
    assert idx.catch_up().spans == 1
    with idx.snapshot() as snap:
        assert snap.trace("t1").span_count == 2
        assert snap.totals().bad_lines == 0
    idx.close()


def test_bad_lines_are_counted_with_offsets_and_skipped(tmp_path):
    path = tmp_path / "t.jsonl"
    good = span_line("t1", "s1")
    lines = [good, b"{not json\n", b"[1, 2]\n", b'{"trace_id": 5, "span_id": "x"}\n', b"\n",
             span_line("t1", "s2", "s1")]
    path.write_bytes(b"".join(lines))
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        assert snap.trace("t1").span_count == 2
        bad = snap.bad_lines()
        assert [b.offset for b in bad] == [len(good), len(good) + 10, len(good) + 17]
        assert snap.totals().bad_lines == 3
    idx.close()


def test_values_of_odd_types_are_ignored_like_the_reference_not_fatal(tmp_path):
    path = tmp_path / "t.jsonl"
    odd = (b'{"trace_id":"t1","span_id":"s2","parent_span_id":["s1"],"name":7,"start_time":3,'
           b'"status":{"code":[]},"resource":{"attributes":{"service.name":["x"]}},'
           b'"attributes":{"inference.agent_name":["a"],"inference.llm.input_tokens":true,'
           b'"inference.llm.output_tokens":2.5,"inference.project_id":{"p":1},"tool.name":""}}\n')
    path.write_bytes(span_line("t1", "s1", attrs={"inference.agent_name": "a"}) + odd)
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        row = snap.trace("t1")
        assert (row.span_count, row.service_names, row.agent_names, row.total_input_tokens) == (2, ["svc"], ["a"], 1)
        assert (row.total_output_tokens, row.project_id, row.missing_agent_identity_count) == (0, None, 1)
        assert row.missing_parent_count == 1  # "['s1']" is no span id of the trace
        assert [(s.name, s.parent_span_id, s.status_code) for s in snap.spans("t1")][1] == ("7", "['s1']", "")
    idx.close()


def test_incremental_equals_scratch_for_any_cut(tmp_path):
    src = write_dataset(tmp_path / "src.jsonl", traces=30, extra=odd_lines()).read_bytes()
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"")
    idx = TraceIndex.open(live, tmp_path / "live-idx", chunk_bytes=20_000, commit_bytes=20_000)
    pos = 0
    for size in (1, 5000, 333, 70_000, 1, 120_000, len(src)):
        with open(live, "ab") as fh:
            fh.write(src[pos:pos + size])
        pos += size
        idx.catch_up()
    scratch = build(tmp_path / "src.jsonl", tmp_path / "scratch-idx")
    mine, theirs = dump(idx), dump(scratch)
    for d in (mine, theirs):  # file names differ; everything else must not
        d["traces"] = {k: (r.__class__(**{**{s: getattr(r, s) for s in r.__slots__}, "file": ""}),
                           [s.__class__(**{**{x: getattr(s, x) for x in s.__slots__}, "file": ""})
                            for s in spans], errs)
                       for k, (r, spans, errs) in d["traces"].items()}
    assert mine == theirs
    idx.close()
    scratch.close()


@pytest.mark.parametrize("change", ["truncate", "replace", "rewrite-head"])
def test_truncated_or_replaced_file_is_reindexed(tmp_path, change):
    path = write_dataset(tmp_path / "t.jsonl", traces=6)
    idx = build(path, tmp_path / "idx")
    other = tmp_path / "other.jsonl"
    write_dataset(other, traces=4, seed=99)
    if change == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif change == "replace":
        os.replace(other, path)
    else:  # same inode, same size or larger, different head
        data = other.read_bytes()
        with open(path, "r+b") as fh:
            fh.write(data)
    stats = idx.catch_up()
    assert stats.reset
    fresh = build(path, tmp_path / "fresh")
    assert dump(idx)["traces"].keys() == dump(fresh)["traces"].keys()
    assert dump(idx)["totals"] == dump(fresh)["totals"]
    idx.close()
    fresh.close()


def test_shards_in_name_order_and_new_shards_join(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "traces-p1.jsonl").write_bytes(span_line("b", "1") + span_line("a", "2"))
    (folder / "traces-p0.jsonl").write_bytes(span_line("z", "3"))
    (folder / "notes.txt").write_text("not a shard")
    idx = build(folder, None)
    with idx.snapshot() as snap:
        assert snap.trace_ids() == ["z", "b", "a"]
    (folder / "traces-p0.jsonl").open("ab").write(span_line("y", "4"))
    (folder / "traces-p2.jsonl").write_bytes(span_line("c", "5"))
    idx.catch_up()
    with idx.snapshot() as snap:
        assert snap.trace_ids() == ["z", "y", "b", "a", "c"]
        assert snap.trace_ids(offset=1, limit=2) == ["y", "b"]
        assert snap.trace_ids(limit=0) == [] and snap.trace_ids(offset=9) == []
        assert snap.trace_ids(IndexFilters(service_names=["svc"]), offset=3) == ["a", "c"]
        assert snap.totals().files == 3
    idx.close()
    glob_idx = build(str(folder / "traces-p[01].jsonl"), tmp_path / "g")
    with glob_idx.snapshot() as snap:
        assert snap.trace_ids() == ["z", "y", "b", "a"]
    glob_idx.close()


def test_our_filters_and_live_facts(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join([
        span_line("done", "r", "", end="2026-01-01T00:00:05.000000000Z",
                  attrs={"tool.name": "bash", "inference.run_id": "run-1"}),
        span_line("open", "c", "r-missing", attrs={"gen_ai.tool.name": "grep", "inference.run_id": "run-2"}),
    ]))
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        assert snap.trace_ids(IndexFilters(complete=True)) == ["done"]
        assert snap.trace_ids(IndexFilters(complete=False)) == ["open"]
        assert snap.trace_ids(IndexFilters(tool_names=["grep", "nope"])) == ["open"]
        assert snap.trace_ids(IndexFilters(run_ids=["run-1"])) == ["done"]
        assert snap.trace_ids(IndexFilters(min_duration_ms=2000)) == ["done"]
        assert snap.totals().in_progress_traces == 1
        assert snap.totals().spans_without_projection == 2
        row = snap.trace("open")
        assert row.in_progress and row.tool_names == ["grep"] and row.last_seen > 0
        assert snap.trace("nope") is None and snap.spans("nope") == []
    idx.close()


def test_spans_error_spans_and_signatures(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join([
        span_line("t1", "a", "", name="run"),
        span_line("t1", "b", "a", name="tool", error="Timeout " + "x" * 250),
        span_line("t2", "c", "", name="tool", error="Timeout " + "x" * 250),
        span_line("t2", "d", "c", name="tool", error="Timeout " + "x" * 260),
    ]))
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        refs = snap.spans("t1")
        assert [(r.span_id, r.parent_span_id, r.name, r.status_code) for r in refs] == [
            ("a", "", "run", "STATUS_CODE_UNSET"), ("b", "a", "tool", "STATUS_CODE_ERROR")]
        assert snap.read_span(refs[1]) == span_line("t1", "b", "a", name="tool",
                                                    error="Timeout " + "x" * 250).rstrip(b"\n")
        assert snap.error_spans("t1") == [("tool", "Timeout " + "x" * 250)]
        [sig] = snap.error_signatures()  # messages agree on their first 200 chars
        assert (sig.span_name, len(sig.status_message), sig.error_span_count, sig.trace_count,
                sig.example_trace_ids) == ("tool", 200, 3, 2, ["t1", "t2"])
        assert snap.trace("t1").error_span_names == ["tool"]
    idx.close()


def test_map_grows_when_full(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "INITIAL_MAP_SIZE", 256 << 10)
    path = write_dataset(tmp_path / "t.jsonl", traces=40)
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        assert snap.count() == 40
    idx.close()


def test_readers_keep_their_snapshot_while_the_writer_commits(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(span_line("t1", "a"))
    idx = build(path, tmp_path / "idx")
    with idx.snapshot() as snap:
        with open(path, "ab") as fh:
            fh.write(span_line("t2", "b"))
        idx.catch_up()  # not blocked by the open reader
        assert snap.trace_ids() == ["t1"]
    with idx.snapshot() as snap:
        assert snap.trace_ids() == ["t1", "t2"]
    idx.close()


def test_follow_sees_appends_until_stopped(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(span_line("t1", "a"))
    idx = TraceIndex.open(path, tmp_path / "idx")
    stop = threading.Event()
    updates = []
    thread = threading.Thread(target=idx.follow, args=(stop,), kwargs={"on_update": updates.append})
    thread.start()
    try:
        for i in range(3):
            with open(path, "ab") as fh:
                fh.write(span_line(f"n{i}", "x"))
            idx.notify()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with idx.snapshot() as snap:
                    if snap.trace(f"n{i}") is not None:
                        break
                time.sleep(0.01)
            else:
                pytest.fail(f"n{i} never became visible")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and updates
    idx.close()


def test_two_handles_in_one_process_share_the_environment(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=5)
    a = TraceIndex.open(path, tmp_path / "idx")
    b = TraceIndex.open(path, tmp_path / "idx")
    a.catch_up()
    b.catch_up()
    with b.snapshot() as snap:
        assert snap.count() == 5
    a.close()
    with b.snapshot() as snap:
        assert snap.count() == 5
    b.close()


def test_close_does_not_wait_for_a_catch_up_in_another_process(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=2)
    idx = TraceIndex.open(path, tmp_path / "idx")
    # A second open file description holds the flock, as another process's catch-up would.
    fd = os.open(tmp_path / "idx" / "catch-up.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        closer = threading.Thread(target=idx.close)
        closer.start()
        closer.join(10)
        assert not closer.is_alive()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def test_follow_picks_up_new_shards_in_a_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "traces-p0.jsonl").write_bytes(span_line("a", "1"))
    idx = TraceIndex.open(folder)
    stop = threading.Event()
    thread = threading.Thread(target=idx.follow, args=(stop,))
    thread.start()
    try:
        (folder / "traces-p1.jsonl").write_bytes(span_line("b", "2"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with idx.snapshot() as snap:
                if snap.trace_ids() == ["a", "b"]:
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the new shard was never indexed")
    finally:
        stop.set()
        thread.join(10)
    idx.close()


def test_a_glob_under_a_missing_folder_names_nothing_and_creates_nothing(tmp_path):
    from halo_live.indexer import DatasetError

    missing = tmp_path / "not-yet"
    with pytest.raises(DatasetError, match="no such folder"):
        TraceIndex.open(str(missing / "traces-*.jsonl"))
    assert not missing.exists()
