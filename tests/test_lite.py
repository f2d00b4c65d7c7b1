"""`halo tool`'s lite lane: the same answers as the registry, without pydantic.

The lite lane checks a lite tool's arguments against schemas generated from
the pydantic models (`engine/lite_schemas.py`) and answers through the same
query functions. These tests hold it to the models: the generated file must
be current, the models must have nothing the schema cannot say (validators,
value-changing config), every input the lite check accepts must validate to
the same values under pydantic, and every answer must equal `run_tool`'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from halo_live.engine import lite
from halo_live.engine.filtering import ToolError, open_index
from halo_live.engine.lite_generate import TARGET, generated_source
from halo_live.engine.tools import TOOLS, open_store, run_tool
from tests import _tools_helpers as gen


def test_the_generated_schemas_match_the_models():
    assert TARGET.read_text(encoding="utf-8") == generated_source(), (
        "engine/lite_schemas.py is out of date with engine/models.py: run "
        "`python -m halo_live.engine.lite_generate` and commit the result")


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """`model` and every model its fields hold, at any depth."""
    found = [model]
    for model_class in found:
        for field in model_class.model_fields.values():
            for arg in _type_args(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in found:
                    found.append(arg)
    return found


def _type_args(annotation) -> list:
    args = [annotation]
    for arg in getattr(annotation, "__args__", ()):
        args += _type_args(arg)
    return args


def _function_schemas(node) -> list[str]:
    """Types of the core-schema nodes that run Python code on a value (validators, serializers aside)."""
    out = []
    if isinstance(node, dict):
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("function"):
            out.append(kind)
        for key, value in node.items():
            if key != "serialization":
                out += _function_schemas(value)
    elif isinstance(node, list):
        for item in node:
            out += _function_schemas(item)
    return out


@pytest.mark.parametrize("tool", sorted(lite.RUNNERS))
def test_the_lite_tools_models_say_everything_in_their_schema(tool):
    """A validator or a value-changing setting would not show in the JSON schema: the lite
    check would accept input pydantic changes. Give such a tool up from `lite.RUNNERS` instead."""
    for model in _models(TOOLS[tool].arguments_model):
        model.model_rebuild()
        assert not _function_schemas(model.__pydantic_core_schema__), model.__name__
        assert set(model.model_config) <= {"extra", "defer_build"}, (model.__name__, model.model_config)


# Arguments that pydantic accepts as they are, that it coerces, and that it rejects.
FILTER_VALUES = {
    "has_errors": [True, False, None, 1, 0, "true", "yes", [], 2],
    "model_names": [["o3"], [], ["a", "b"], None, "o3", [1], [None], ("x",), {"a": 1}],
    "service_names": [["svc"], "svc", [True]],
    "agent_names": [["helper"], [""], [["x"]]],
    "project_id": ["p", "", None, 5, ["p"], True],
    "start_time_gte": ["2026-01-01", "2026-01-01T00:00:00Z", "yesterday", 2026, None],
    "end_time_lte": ["2026-12-31T23:59:59.5Z", 1.5],
    "regex_pattern": ["Timeout", "(", "", 1],
    "tool_names": [["search"], [], "search"],
    "complete": [True, False, "false", 0, None],
    "min_duration_ms": [0, 1, 1.5, -1, -0.5, 10**20, "5", True, float("nan"), float("inf"), 2**53, 2**53 + 1],
    "run_ids": [["run-1"], [1.0]],
    "outcome": ["passed", "failed", "unknown", "PASSED", "", None, 1],
    "task_ids": [["t1"], "t1"],
    "min_score": [0, 0.5, -3, "0.5", False, None],
    "max_score": [1, 1e300, -1e-300],
    "colour": ["red"],
}


def _cases():
    yield {}
    yield {"filters": {}}
    yield {"filters": None}
    yield {"filters": []}
    yield {"filters": "has_errors"}
    yield {"filters": {}, "limit": 5}
    for field, values in FILTER_VALUES.items():
        for value in values:
            yield {"filters": {field: value}}
    yield {"filters": {"has_errors": True, "model_names": ["o3"], "agent_names": ["helper"],
                       "min_duration_ms": 3, "outcome": "failed", "regex_pattern": "x"}}


@pytest.mark.parametrize("tool", sorted(lite.RUNNERS))
def test_what_the_lite_check_accepts_pydantic_validates_to_the_same_values(tool):
    model = TOOLS[tool].arguments_model
    accepted = 0
    for arguments in _cases():
        text = json.dumps(arguments)
        got = lite.parse_arguments(tool, text)
        try:
            expected = model.model_validate(json.loads(text)).model_dump()
        except ValidationError:
            assert got is None, f"lite accepted {text}, which pydantic rejects"
            continue
        if got is not None:
            accepted += 1
            assert got == expected, text
            assert [type(v) for v in got["filters"].values()] == [type(v) for v in expected["filters"].values()]
    assert accepted >= 40  # the lane is really taken for ordinary arguments
    assert lite.parse_arguments(tool, "") == model().model_dump()
    assert lite.parse_arguments(tool, "{not json") is None
    assert lite.parse_arguments(tool, "[" * 100_000) is None
    assert lite.parse_arguments("view_trace", '{"trace_id": "x"}') is None  # not a lite tool


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> Path:
    lines = gen.generate(40, seed=11, big_every=9, incomplete_every=7, run_id="run-1")
    return gen.write(tmp_path_factory.mktemp("lite") / "t.jsonl", lines)


def _lite_answer(traces: Path, tool: str, arguments: dict) -> dict:
    parsed = lite.parse_arguments(tool, json.dumps(arguments))
    assert parsed is not None, arguments
    index = open_index(traces)
    try:
        return lite.run(index, tool, parsed)
    except ToolError as exc:
        return {"error": str(exc)}
    finally:
        index.close()


def test_the_lite_lane_answers_as_the_registry(traces):
    with open_store(traces) as store:
        overview = run_tool(store, "get_dataset_overview")["result"]
        filter_sets = [
            {}, {"has_errors": True}, {"has_errors": False}, {"complete": False},
            {"model_names": overview["model_names"][:1]}, {"agent_names": overview["agent_names"][-1:]},
            {"service_names": overview["service_names"]}, {"tool_names": overview["tool_names"][:2]},
            {"run_ids": ["run-1"]}, {"run_ids": ["nope"]}, {"min_duration_ms": 50},
            {"start_time_gte": overview["earliest_start_time"][:10]}, {"end_time_lte": overview["latest_end_time"]},
            {"regex_pattern": "FileNotFound"}, {"regex_pattern": "(?i)timeout", "has_errors": True},
            {"outcome": "unknown"}, {"min_score": 0.5},
            # errors: the same words
            {"start_time_gte": "yesterday"}, {"regex_pattern": "("}, {"regex_pattern": "(" * 2000 + ")" * 2000},
        ]
        counted = []
        for filters in filter_sets:
            arguments = {"filters": filters}
            expected = run_tool(store, "count_traces", arguments)
            assert _lite_answer(traces, "count_traces", arguments) == expected, filters
            counted.append(expected.get("result", {}).get("total"))
    assert len(set(counted)) > 6  # the filters tell traces apart


def test_the_lite_answer_goes_through_the_same_budget(traces):
    with open_store(traces) as store:
        for limit in (4_000, 40_000):
            index = open_index(traces)
            try:
                answer = lite.run(index, "count_traces", lite.parse_arguments("count_traces", "{}"), limit)
            finally:
                index.close()
            assert answer == run_tool(store, "count_traces", {}, limit)
    with pytest.raises(ToolError, match="does not fit in 20 characters"):
        lite.envelope("count_traces", {"total": 12_345_678_901_234}, 20)


def test_halo_tool_count_traces_imports_no_pydantic(traces):
    """The point of the lane: a count from the command line skips pydantic's import (~80 ms)."""
    program = ("import sys\nfrom halo_live.cli import main\n"
               f"code = main(['tool', 'count_traces', {str(traces)!r}, '--args', '{{\"filters\": {{\"has_errors\": true}}}}'])\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))\n"
               "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer, loaded = done.stdout.splitlines()
    with open_store(traces) as store:
        assert json.loads(answer) == run_tool(store, "count_traces", {"filters": {"has_errors": True}})
    assert loaded == "[]"
