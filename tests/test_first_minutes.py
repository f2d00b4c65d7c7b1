"""A new user's first minutes: a wrong or empty path is said in words, and the report
says what it could not read and when the data (not the index) last changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from halo_live.cli import main
from tests import _tools_helpers as gen


@pytest.mark.parametrize("argv", [["report", "{p}"], ["tool", "count_traces", "{p}", "--args", "{{}}"],
                                  ["{p}", "-p", "what fails?", "--base-url", "http://127.0.0.1:9/v1"]])
def test_a_missing_folder_is_an_error_naming_it(tmp_path, capsys, argv):
    missing = tmp_path / "no-such-run"
    code = main([a.format(p=missing) for a in argv])
    err = capsys.readouterr().err
    assert code != 0 and str(missing) in err and "no such" in err


@pytest.mark.parametrize("argv", [["report", "{p}"], ["tool", "count_traces", "{p}", "--args", "{{}}"]])
def test_a_folder_without_shards_says_what_was_looked_for(tmp_path, capsys, argv):
    empty = tmp_path / "run"
    empty.mkdir()
    assert main([a.format(p=empty) for a in argv]) == 0  # a live run may not have written yet
    err = capsys.readouterr().err
    assert f"{empty} holds no *.jsonl file yet" in err


def test_a_glob_matching_nothing_says_so(tmp_path, capsys):
    pattern = str(tmp_path / "traces-*.jsonl")
    assert main(["report", pattern]) == 0
    assert f"no file matches {pattern} yet" in capsys.readouterr().err


@pytest.fixture
def file_with_junk(tmp_path: Path) -> tuple[Path, list[dict]]:
    lines = gen.generate(12, seed=4)
    path = gen.write(tmp_path / "t.jsonl", lines)
    with open(path, "ab") as fh:
        fh.write(b"not json at all\n" + b'{"just": "an object"}\n' + b'{"trace_id": "partial')
    return path, [json.loads(line) for line in lines]


def test_the_report_states_skipped_lines_and_a_partial_last_line(file_with_junk, capsys):
    path, _ = file_with_junk
    assert main(["report", str(path), "--json"]) == 0
    overview = json.loads(capsys.readouterr().out)["overview"]
    assert overview["bad_lines"] == 2 and overview["index_lag_bytes"] == len(b'{"trace_id": "partial')
    assert main(["report", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 line(s) that are not JSON or not a span, skipped" in out
    assert "21 bytes of a partial last line" in out


def test_the_reports_last_span_is_the_datas_time_not_the_index_time(file_with_junk, capsys):
    path, spans = file_with_junk
    latest = max(s["end_time"] for s in spans)
    assert main(["report", str(path)]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("last span"))
    assert line.split()[-1] == latest
