"""`run_code`: model-written Python in the pydantic-monty sandbox, over the real index.

Every refusal is a tool error the model can read, within the limit, and the
next call works. Aggregates computed inside the sandbox equal the trace tools'
own figures on the 2k-trace synthetic set of `bench/gen_traces.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.gen_traces import generate
from halo_live.cli import main
from halo_live.engine.sandbox import SandboxLimits
from halo_live.engine.tools import TOOLS, open_store, run_tool


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """The 2k-trace synthetic set (~50k spans, ~130 MB), written once for the module."""
    path = tmp_path_factory.mktemp("synthetic") / "traces.jsonl"
    generate(path, 2000, seed=7)
    return path


@pytest.fixture(scope="module")
def store(synthetic, tmp_path_factory):
    with open_store(synthetic, tmp_path_factory.mktemp("idx")) as opened:
        yield opened


def code(store, source: str) -> dict:
    return run_tool(store, "run_code", {"code": source}, allow_code=True)


def test_aggregates_equal_the_tools_figures(store):
    total = run_tool(store, "count_traces", {})["result"]["total"]
    errors = run_tool(store, "count_traces", {"filters": {"has_errors": True}})["result"]["total"]
    by_model = run_tool(store, "count_traces", {"filters": {"model_names": ["gpt-4.1"]}})["result"]["total"]
    overview = run_tool(store, "get_dataset_overview", {"filters": {"has_errors": True}})["result"]
    page = run_tool(store, "query_traces", {"filters": {"has_errors": True}, "limit": 5})["result"]
    got = code(store, """
rows = trace_rows()
failed = [r for r in rows if r['has_errors']]
gpt = [r for r in rows if 'gpt-4.1' in r['model_names']]
print(len(rows), len(failed))
{'total': len(rows), 'errors': len(failed), 'gpt': len(gpt),
 'error_tokens': sum(r['total_input_tokens'] for r in failed),
 'first_ids': [r['trace_id'] for r in failed[:5]],
 'filtered': len(trace_rows({'has_errors': True}, fields=['trace_id']))}
""")
    assert "error" not in got, got
    value = got["result"]["value"]
    assert total == 2000
    assert value == {"total": total, "errors": errors, "gpt": by_model,
                     "error_tokens": overview["total_input_tokens"],
                     "first_ids": [t["trace_id"] for t in page["traces"]], "filtered": errors}
    assert got["result"]["stdout"] == f"{total} {errors}\n"
    assert got["result"]["host_calls"] == 2


def test_the_trace_tools_are_functions_with_the_same_arguments(store):
    tid = run_tool(store, "query_traces", {"limit": 1})["result"]["traces"][0]["trace_id"]
    got = code(store, f"""
a = count_traces({{'has_errors': True}})['total']
b = count_traces(filters={{'has_errors': True}})['total']
page = query_traces(None, 3, 1)
hits = search_trace('{tid}', 'STATUS_CODE', max_matches=2)
view = view_trace('{tid}')
[a == b, len(page['traces']), page['traces'][0]['trace_id'] != '{tid}', hits['returned_match_count'] <= 2,
 view['trace_id']]
""")
    assert got["result"]["value"] == [True, 3, True, True, tid]


REFUSALS = {
    "file": ("open('/etc/passwd').read()", "PermissionError"),
    "listing": ("import os\nos.listdir('/')", "PermissionError"),
    "network": ("import socket\nsocket.create_connection(('example.com', 80))", "No module named 'socket'"),
    "process": ("import subprocess\nsubprocess.run(['ls'])", "No module named 'subprocess'"),
    "dunder": ("().__class__.__base__.__subclasses__()", "AttributeError"),
    "infinite loop": ("while True:\n    pass", "time limit"),
    "memory bomb": ("x = 'a' * (10 ** 10)", "MemoryError"),
    "output flood": ("while True:\n    print('flood' * 100)", "output cut after 64000 chars"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_are_tool_errors_and_the_next_call_works(store, monkeypatch, name):
    monkeypatch.setenv("HALO_RUN_CODE_TIME_LIMIT", "1.5")
    source, expected = REFUSALS[name]
    got = code(store, source)
    assert set(got) == {"error"} and expected in got["error"], got
    assert got["error"].startswith("run_code failed: ")
    again = code(store, "count_traces()['total']")
    assert again["result"]["value"] == 2000


def test_an_error_names_its_line_and_keeps_what_was_printed(store):
    got = code(store, "print('before')\nx = 1\ny = x / 0\n")
    assert got["error"].startswith("run_code failed: ZeroDivisionError")
    assert "at line 3: y = x / 0" in got["error"] and "before" in got["error"]
    got = code(store, "view_trace('no-such-trace')")
    assert "unknown trace_id 'no-such-trace'" in got["error"] and "line 1" in got["error"]
    got = code(store, "def f(:\n  pass")
    assert "SyntaxError" in got["error"]
    got = code(store, "trace_rows(fields=['nope'])")
    assert "unknown fields ['nope']" in got["error"]
    # the model may catch a tool's error itself
    got = code(store, "try:\n    view_trace('x')\nexcept ValueError as e:\n    r = 'caught'\nr")
    assert got["result"]["value"] == "caught"


def test_a_large_value_is_cut_and_output_over_the_cap_is_counted(store):
    got = code(store, "for i in range(20000):\n    print('0123456789')\n[r['trace_id'] for r in trace_rows()]")
    result = got["result"]
    assert len(result["stdout"]) == SandboxLimits().output_chars
    assert result["output_truncated_chars"] == 20000 * 11 - SandboxLimits().output_chars
    assert result["value"].startswith("[halo truncated: the value is")


def test_run_code_is_off_unless_allowed(store):
    assert TOOLS["run_code"].needs_permission
    got = run_tool(store, "run_code", {"code": "1"})
    assert "--allow-code" in got["error"]
    assert run_tool(store, "run_code", {"code": "1", "timeout": 5}, allow_code=True)["result"]["value"] == 1


def test_bad_limits_from_the_environment_are_one_line(store, monkeypatch):
    monkeypatch.setenv("HALO_RUN_CODE_TIME_LIMIT", "soon")
    assert code(store, "1") == {"error": "run_code: $HALO_RUN_CODE_TIME_LIMIT must be a number, got 'soon'"}


def test_halo_tool_runs_code_only_with_allow_code(synthetic, tmp_path, capsys):
    args = json.dumps({"code": "print('hi')\ncount_traces({'has_errors': True})['total']"})
    index = ["--index-dir", str(tmp_path / "idx")]
    assert main(["tool", "run_code", str(synthetic), "--args", args, *index]) == 2
    _, err = capsys.readouterr()
    assert err.strip() == "halo: error: run_code runs the given code (in a sandbox); pass --allow-code to allow it"
    assert main(["tool", "run_code", str(synthetic), "--args", args, "--allow-code", *index]) == 0
    out, _ = capsys.readouterr()
    result = json.loads(out)["result"]
    assert result["stdout"] == "hi\n" and isinstance(result["value"], int)
    assert main(["tool", "run_code", str(synthetic), "--allow-code", *index,
                 "--args", json.dumps({"code": "1 / 0"})]) == 1
    _, err = capsys.readouterr()
    assert err.strip() == "halo: error: run_code failed: ZeroDivisionError: division by zero at line 1: 1 / 0"
