"""A span that arrives twice (an OTLP client retried) is indexed once.

Two lines with the same (trace id, span id) count once in the index and in
every tool's answer: a 2,000-trace file with every 7th line written twice
answers exactly as the file without the doubles, with the compiled scanner and
with the pure-Python parse, whether the second copy sits next to the first or
arrives in a later append (the live catch-up). The repeats are counted and
reported (`duplicate_spans`, `halo index`'s summary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _tools_helpers as gen

ROOT = Path(__file__).resolve().parent.parent

# Builds the index of argv[1] (after argv[3] == "live": appends argv[4]'s lines and catches up
# again) and prints the answers of every tool as one JSON document.
ANSWERS = r"""
import json, sys
from halo_live.engine.tools import open_store, run_tool
from halo_live.indexer import parse
path, index_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
store = open_store(path, index_dir)
if mode == "live":
    with open(path, "ab") as fh, open(sys.argv[4], "rb") as more:
        fh.write(more.read())
    store.refresh()
out = {"parser": parse.parser_name()}
def call(name, args):
    return run_tool(store, name, args, budget=10**9)
ov = call("get_dataset_overview", {})["result"]
out["duplicate_spans"] = ov.pop("duplicate_spans", 0)
ov.pop("last_span_arrival")
out["overview"] = ov
for flt in ({"has_errors": True}, {"model_names": [ov["model_names"][0]]}, {"agent_names": ov["agent_names"][:2]}):
    res = call("get_dataset_overview", {"filters": flt})["result"]
    res.pop("last_span_arrival"); res.pop("duplicate_spans", None)
    out[f"overview {flt}"] = res
    out[f"count {flt}"] = call("count_traces", {"filters": flt})
ids = []
for offset in range(0, ov["total_traces"], 500):
    page = call("query_traces", {"limit": 500, "offset": offset})["result"]
    out[f"query {offset}"] = page
    ids += [t["trace_id"] for t in page["traces"]]
for tid in ids[::10]:
    view = call("view_trace", {"trace_id": tid})
    out[f"view {tid}"] = view
    spans = [s["span_id"] for s in view["result"]["spans"]]
    out[f"spans {tid}"] = call("view_spans", {"trace_id": tid, "span_ids": spans[:5]})
    out[f"search {tid}"] = call("search_trace", {"trace_id": tid, "regex_pattern": "error|tool"})
store.close()
print(json.dumps(out, sort_keys=True))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The clean file, the same with every 7th line written twice, and the repeats alone."""
    where = tmp_path_factory.mktemp("dups")
    lines = gen.generate(2000)
    doubled = [x for i, line in enumerate(lines) for x in ([line, line] if i % 7 == 0 else [line])]
    return {"clean": gen.write(where / "clean.jsonl", lines),
            "doubled": gen.write(where / "doubled.jsonl", doubled),
            "repeats": gen.write(where / "repeats.jsonl", lines[::7]),
            "repeat_count": len(lines[::7]), "spans": len(lines)}


def answers(tmp_path: Path, path: Path, native: str, mode: str = "build", more: Path | None = None) -> dict:
    if mode == "live":  # the file grows under the index: start from a copy
        copy = tmp_path / f"live-{native}.jsonl"
        copy.write_bytes(path.read_bytes())
        path = copy
    env = dict(os.environ, HALO_INDEX_NATIVE=native)
    done = subprocess.run([sys.executable, "-c", ANSWERS, str(path), str(tmp_path / f"idx-{native}-{mode}"),
                           mode, str(more or "")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def clean_answers(files, tmp_path_factory):
    out = answers(tmp_path_factory.mktemp("clean"), files["clean"], "1")
    assert out["duplicate_spans"] == 0 and out["overview"]["total_spans"] == files["spans"]
    return out


@pytest.mark.parametrize("native", ["1", "0"])
def test_a_file_with_every_7th_line_twice_answers_as_the_file_without(files, clean_answers, tmp_path, native):
    got = answers(tmp_path, files["doubled"], native)
    assert got.pop("parser").startswith("compiled" if native == "1" else "pure Python")
    assert got.pop("duplicate_spans") == files["repeat_count"]
    want = {k: v for k, v in clean_answers.items() if k not in ("parser", "duplicate_spans")}
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], key


@pytest.mark.parametrize("native", ["1", "0"])
def test_repeats_arriving_in_a_later_append_are_indexed_once(files, clean_answers, tmp_path, native):
    got = answers(tmp_path, files["clean"], native, "live", files["repeats"])
    got.pop("parser")
    assert got.pop("duplicate_spans") == files["repeat_count"]
    want = {k: v for k, v in clean_answers.items() if k not in ("parser", "duplicate_spans")}
    for key in want:
        assert got[key] == want[key], key


def test_halo_index_says_how_many_lines_repeated(tmp_path):
    lines = gen.generate(30)
    path = gen.write(tmp_path / "t.jsonl", lines + lines[:4])
    done = subprocess.run([sys.executable, "-m", "halo_live", "index", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{len(lines):,} spans" in done.stdout and "4 duplicate span lines counted once" in done.stdout


def test_both_parsers_skip_the_same_repeats_in_one_range():
    from halo_live.indexer import parse
    from tests.test_index_native import as_dict

    lines = gen.generate(40)
    data = b"".join(x for i, line in enumerate(lines) for x in ([line, line] if i % 3 == 0 else [line]))
    native, python = parse._parse_native(data, 0, 0), parse.parse_bytes_python(data, 0, 0)
    assert as_dict(native) == as_dict(python)
    assert python.duplicates == len(lines[::3]) and python.spans == len(lines)


@pytest.mark.parametrize("native", ["1", "0"])
def test_a_repeat_arriving_in_an_earlier_named_shard_leaves_the_trace_listed_once(tmp_path, monkeypatch, native):
    """A retried span landing in a shard that sorts before the trace's first one: the trace
    moves to that shard's position once, and is neither listed twice nor counted twice."""
    from tests._index_helpers import build, span_line

    monkeypatch.setenv("HALO_INDEX_NATIVE", native)
    folder = tmp_path / "shards"
    folder.mkdir()
    a, b = "a" * 32, "b" * 32
    (folder / "b.jsonl").write_bytes(span_line(a, "1" * 16) + span_line(a, "2" * 16, "1" * 16)
                                     + span_line(b, "5" * 16))
    idx = build(folder, tmp_path / "idx")
    try:
        (folder / "a.jsonl").write_bytes(span_line(a, "2" * 16, "1" * 16) + span_line(a, "3" * 16, "1" * 16))
        idx.catch_up()
        with idx.snapshot() as snap:
            ids = snap.trace_ids()
            assert sorted(ids) == [a, b] and snap.count() == 2
            assert snap.trace(a).span_count == 3 and snap.totals().total_spans == 4
            assert [r.span_id for r in snap.spans(a)] == ["1" * 16, "2" * 16, "3" * 16]
    finally:
        idx.close()
