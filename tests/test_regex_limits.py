"""A regex that would backtrack for hours is stopped, said in words, and the next call works.

`(a|aa)+$` against a long run of "a"s is exponential in the run's length; every
place a user's or model's regex runs (the `regex_pattern` filter, `search_trace`,
`search_span`, the code tools' grep) must stop it at its time limit.
"""

from __future__ import annotations

import json

import orjson
import pytest

from halo_live.engine.agent.code_tools import CODE_TOOLS, Repos, run_repo_tool
from halo_live.engine.bounded_regex import MATCH_SECONDS
from halo_live.engine.tools import open_store, run_tool
from halo_live.exporter import canonical
from tests import _tools_helpers as gen

EVIL = "(a|aa)+$"
RUN = "a" * 64 + "!"


@pytest.fixture
def store(tmp_path):
    lines = gen.generate(6, seed=2)
    span = orjson.loads(lines[0])
    span[canonical.ATTRIBUTES]["note"] = RUN
    lines[0] = orjson.dumps(span) + b"\n"
    with open_store(gen.write(tmp_path / "t.jsonl", lines)) as opened:
        yield opened, span


def _is_stopped(answer: dict) -> None:
    assert set(answer) == {"error"}, answer
    assert EVIL in answer["error"] and f"more than {MATCH_SECONDS:g} s" in answer["error"]
    assert "simplify it" in answer["error"]


def test_the_filter_search_trace_and_search_span_stop_a_runaway_regex(store):
    opened, span = store
    trace_id, span_id = span[canonical.TRACE_ID], span[canonical.SPAN_ID]
    _is_stopped(run_tool(opened, "count_traces", {"filters": {"regex_pattern": EVIL}}))
    _is_stopped(run_tool(opened, "search_trace", {"trace_id": trace_id, "regex_pattern": EVIL}))
    _is_stopped(run_tool(opened, "search_span", {"trace_id": trace_id, "span_id": span_id,
                                                 "regex_pattern": EVIL}))
    # the store is fine afterwards, and a sane regex over the same bytes answers
    found = run_tool(opened, "search_trace", {"trace_id": trace_id, "regex_pattern": "a{64}!"})
    assert found["result"]["match_count"] == 1


def test_the_code_grep_stops_a_runaway_regex(tmp_path):
    (tmp_path / "notes.txt").write_text(f"fine\n{RUN}\n")
    repos = Repos.open(tmp_path)
    grep = next(tool for tool in CODE_TOOLS if tool.name == "grep_files")
    _is_stopped(run_repo_tool(repos, grep, json.dumps({"regex_pattern": EVIL})))
    assert run_repo_tool(repos, grep, json.dumps({"regex_pattern": "fine"}))["result"]["matches"]
