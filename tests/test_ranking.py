"""One ranking of error signatures, and both counts, in every halo view.

A signature that hits many traces outranks one trace retrying a tool many times;
`halo compare` notices a change in either count and says which.
"""

from __future__ import annotations

import json

from halo_live.cli import main as halo
from halo_live.engine import signatures
from halo_live.engine.compare import compare, summarize
from halo_live.engine.outcomes import rank_index_signatures
from halo_live.engine.report import build_report
from halo_live.engine.tools import open_store
from halo_live.indexer import TraceIndex
from tests.test_compare import trace

WIDE = ("grep", "no such dir")  # 3 traces, 1 error span each
DEEP = ("read_file", "too many lines")  # 1 trace, 6 error spans


def _write(path, run, deep_spans, first=1):
    path.write_bytes(b"".join(trace(first + i, run, [WIDE]) for i in range(3))
                     + trace(first + 3, run, [DEEP] * deep_spans) + trace(first + 4, run))
    return path


def test_the_index_order_differs_from_the_rule_so_the_rule_is_applied(tmp_path):
    path = _write(tmp_path / "t.jsonl", "r1", 6)
    with TraceIndex.open(path) as index:
        index.catch_up()
        with index.snapshot() as snap:
            raw = [(s.span_name, s.status_message) for s in snap.error_signatures()]
            ranked = [(s.span_name, s.status_message)
                      for s, _ in rank_index_signatures(snap.error_signatures(), 0, 0)]
    assert raw == [DEEP, WIDE] and ranked == [WIDE, DEEP]


def test_the_report_ranks_by_the_rule_and_shows_both_counts(tmp_path, capsys):
    path = _write(tmp_path / "t.jsonl", "r1", 6)
    with open_store(path) as store:
        sigs = build_report(store)["error_signatures"]
    assert [(s["span_name"], s["trace_count"], s["error_span_count"]) for s in sigs] == [
        ("grep", 3, 3), ("read_file", 1, 6)]
    assert halo(["report", str(path)]) == 0
    assert "traces hit" in capsys.readouterr().out


def test_compare_sees_a_change_in_error_spans_when_the_share_of_traces_holds(tmp_path, capsys):
    before = _write(tmp_path / "before.jsonl", "r1", 6)
    after = _write(tmp_path / "after.jsonl", "r2", 1, first=20)
    result = compare(summarize(before), summarize(after))
    by_key = {(s["span_name"], s["status_message"]): s for s in result["signatures"]}
    assert by_key[DEEP]["before"]["traces"] == by_key[DEEP]["after"]["traces"] == 1
    assert (by_key[DEEP]["change"], by_key[DEEP]["changed_in"]) == ("down", ["error_spans"])
    assert by_key[DEEP]["delta_error_spans"] == -5
    assert (by_key[WIDE]["change"], by_key[WIDE]["changed_in"]) == ("same", [])
    assert [s["span_name"] for s in result["signatures"]] == ["grep", "read_file"]
    assert halo(["compare", str(before), str(after)]) == 0
    assert "down (spans)" in capsys.readouterr().out
    assert halo(["compare", str(before), str(after), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["signatures"][1]["changed_in"] == ["error_spans"]


def test_a_signature_that_moves_both_ways_is_mixed():
    moved = signatures.change({"traces": 2, "error_spans": 2}, {"traces": 1, "error_spans": 9}, 10, 10)
    assert moved == {"change": "mixed", "changed_in": ["traces", "error_spans"]}
