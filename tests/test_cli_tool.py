"""`halo tool`: the agent's tools from the command line, same JSON, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from halo_live.cli import main
from halo_live.engine.tools import TOOLS, open_store, run_tool
from tests import _tools_helpers as gen


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    return gen.write(tmp_path / "t.jsonl", gen.generate(12, seed=3, big_every=6))


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_exactly_what_the_agent_gets(traces, capsys):
    with open_store(traces) as store:
        expected = run_tool(store, "query_traces", {"limit": 3, "filters": {"has_errors": True}})
        tid = expected["result"]["traces"][0]["trace_id"]
        view = run_tool(store, "view_trace", {"trace_id": tid})
    code, out, err = _run(capsys, "tool", "query_traces", str(traces),
                          "--args", '{"limit": 3, "filters": {"has_errors": true}}')
    assert code == 0 and err == ""
    assert json.loads(out) == expected
    code, out, _ = _run(capsys, "tool", "view_trace", str(traces), "--args", json.dumps({"trace_id": tid}))
    assert code == 0 and json.loads(out) == view
    # byte for byte the text the agent's function tool hands the model
    from halo_live.engine.agent.runtime import dumps
    assert out == dumps(view) + "\n"


def test_args_from_a_file_and_defaults(traces, tmp_path, capsys):
    args = tmp_path / "args.json"
    args.write_text('{"filters": {"model_names": ["o3"]}}')
    code, out, _ = _run(capsys, "tool", "count_traces", str(traces), "--args", f"@{args}")
    assert code == 0
    with open_store(traces) as store:
        assert json.loads(out) == run_tool(store, "count_traces", {"filters": {"model_names": ["o3"]}})
    code, out, _ = _run(capsys, "tool", "get_dataset_overview", str(traces))
    assert code == 0 and json.loads(out)["result"]["total_traces"] == 12


def test_list_names_every_tool(capsys):
    code, out, _ = _run(capsys, "tool", "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(TOOLS)
    code, out, _ = _run(capsys, "tool", "--list", "--schema")
    assert set(json.loads(out)) == set(TOOLS)


@pytest.mark.parametrize("argv, code, words", [
    (["tool", "no_such_tool", "{path}"], 2, "unknown tool 'no_such_tool'"),
    (["tool", "query_traces", "{path}", "--args", "{not json"], 2, "not JSON"),
    (["tool", "query_traces", "{path}", "--args", '{"limit": 0}'], 2, "limit"),
    (["tool", "query_traces", "{path}", "--args", '{"filters": {"colour": "red"}}'], 2, "filters.colour"),
    (["tool", "view_spans", "{path}", "--args", '{"trace_id": "x", "span_ids": []}'], 2, "span_ids"),
    (["tool", "query_traces", "{path}", "--args", "@/nonexistent/args.json"], 1, "cannot read --args"),
    (["tool", "count_traces", "/nonexistent/traces.jsonl"], 1, "no such trace file"),
    (["tool", "view_trace", "{path}", "--args", '{"trace_id": "feedface"}'], 1, "unknown trace_id 'feedface'"),
    (["tool", "search_trace", "{path}", "--args", '{"trace_id": "feedface", "regex_pattern": "("}'], 1,
     "Invalid regex pattern"),
    (["tool", "count_traces"], 2, "usage: halo tool"),
    (["tool", "count_traces", "{path}", "--args", json.dumps({"filters": {"regex_pattern": "(" * 2000 + ")" * 2000}})],
     1, "too deeply nested"),
])
def test_bad_requests_are_one_line_and_an_exit_code(traces, capsys, argv, code, words):
    got, out, err = _run(capsys, *[a.replace("{path}", str(traces)) for a in argv])
    assert got == code
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err


def test_the_halo_console_script_runs_a_tool(traces):
    halo = shutil.which("halo")
    argv = [halo] if halo else [sys.executable, "-m", "halo_live"]
    done = subprocess.run([*argv, "tool", "count_traces", str(traces),
                           "--args", '{"filters": {"has_errors": false}}'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with open_store(traces) as store:
        assert json.loads(done.stdout) == run_tool(store, "count_traces", {"filters": {"has_errors": False}})


def test_index_dir_puts_the_index_where_asked(traces, tmp_path, capsys):
    where = tmp_path / "elsewhere"
    code, out, _ = _run(capsys, "tool", "count_traces", str(traces), "--index-dir", str(where))
    assert code == 0 and json.loads(out) == {"result": {"total": 12}}
    assert where.exists() and any(where.iterdir())
