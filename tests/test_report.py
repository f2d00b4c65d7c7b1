"""`halo report`: the deterministic failure report, checked against the raw spans."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from engine.cli import main
from engine.report import build_report
from engine.tools import open_store
from exporter.format import ns_from_iso
from tests import _tools_helpers as gen


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[dict]]:
    lines = gen.generate(30, seed=8, incomplete_every=6)
    path = gen.write(tmp_path / "t.jsonl", lines)
    return path, [json.loads(line) for line in lines]


def _by_trace(spans: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in spans:
        out.setdefault(s["trace_id"], []).append(s)
    return out


def test_report_numbers_match_the_spans(dataset):
    path, spans = dataset
    traces = _by_trace(spans)
    with open_store(path) as store:
        report = build_report(store, top=5)
    ov = report["overview"]
    assert ov["total_traces"] == len(traces) and ov["total_spans"] == len(spans)
    errors = [s for s in spans if s["status"]["code"] == "STATUS_CODE_ERROR"]
    assert ov["otel_error_span_count"] == len(errors)

    # tool error rates: every TOOL span, by its tool name
    calls = Counter(s["attributes"]["tool.name"] for s in spans if "tool.name" in s["attributes"])
    failed = Counter(s["attributes"]["tool.name"] for s in errors if "tool.name" in s["attributes"])
    rates = {t["tool"]: t for t in report["tool_error_rates"]}
    assert {name: (t["calls"], t["error_spans"]) for name, t in rates.items()} == \
        {name: (n, failed[name]) for name, n in calls.items()}
    worst = report["tool_error_rates"][0]
    assert worst["error_spans"] == max(failed.values())
    assert worst["error_rate"] == round(worst["error_spans"] / worst["calls"], 4)

    # error signatures ranked by span count
    sig = Counter((s["name"], s["status"]["message"][:200]) for s in errors)
    ranked = report["error_signatures"]
    assert ranked[0]["error_span_count"] == max(sig.values())
    assert [g["error_span_count"] for g in ranked] == sorted((g["error_span_count"] for g in ranked),
                                                            reverse=True)

    # slowest and hungriest
    def duration(tid):
        ss = traces[tid]
        return (ns_from_iso(max(s["end_time"] for s in ss)) - ns_from_iso(min(s["start_time"] for s in ss))) / 1e6

    slowest = sorted(traces, key=lambda t: (-duration(t), t))[:5]
    assert [r["trace_id"] for r in report["slowest_traces"]] == slowest

    def tokens(tid):
        return sum(s["attributes"].get("inference.llm.input_tokens", 0)
                   + s["attributes"].get("inference.llm.output_tokens", 0) for s in traces[tid])

    assert [r["trace_id"] for r in report["token_hungry_traces"]] == \
        sorted(traces, key=lambda t: (-tokens(t), t))[:5]
    open_ = {tid for tid, ss in traces.items() if all(s["parent_span_id"] for s in ss)}
    assert {r["trace_id"] for r in report["in_progress_traces"]} == open_
    assert ov["in_progress_trace_count"] == len(open_)


def test_report_is_deterministic_and_json_on_request(dataset, capsys):
    path, _ = dataset
    assert main(["report", str(path), "--json", "--top", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["report", str(path), "--json", "--top", "3"]) == 0
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert set(data) == {"overview", "error_signatures", "tool_error_rates", "slowest_traces",
                         "token_hungry_traces", "in_progress_traces"}
    assert len(data["slowest_traces"]) == 3


def test_report_tables_for_people(dataset, capsys):
    path, _ = dataset
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    for title in ("Error signatures", "Tool error rates", "Slowest traces",
                  "Most token-hungry traces", "Traces in progress"):
        assert title in out


def test_report_on_a_clean_dataset(tmp_path, capsys):
    path = gen.write(tmp_path / "empty.jsonl", [])
    assert main(["report", str(path)]) == 0
    assert "No ERROR spans" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["report", "/nonexistent/x.jsonl"], "no such trace file"),
    (["report", "{path}", "--top", "0"], "--top must be at least 1"),
])
def test_report_errors_are_one_line(dataset, capsys, argv, words):
    path, _ = dataset
    code = main([a.replace("{path}", str(path)) for a in argv])
    err = capsys.readouterr().err
    assert code != 0 and words in err and len(err.strip().splitlines()) == 1
