"""The generic offline model: any Agents SDK harness runs against it with no API key.

A real `Runner.run` of an agent with tools of many argument shapes (numbers with
bounds, an enum, a list, a nested model through `$ref`, an optional) against
`python -m halo_live.demo.model_server` with no `--policy`: every call the model
asks for passes the SDK's own argument validation, then the model answers, and
`setup_tracing()` writes the run.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

import openai
import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from pydantic import BaseModel, Field

from halo_live import setup_tracing
from halo_live.demo.generic_policy import GenericPolicy, example
from halo_live.demo.model_process import ModelServerProcess
from halo_live.demo.model_server import DEFAULT_POLICY, load_policy
from halo_live.exporter import canonical
from tests._exporter_helpers import check_file, sdk_processors_restored


class Window(BaseModel):
    start: Annotated[int, Field(ge=1, le=500)]
    tags: list[str]


def build_agent(model, called: list[tuple[str, dict]]) -> Agent:
    @function_tool
    def read_lines(path: str, window: Window, mode: Literal["head", "tail"], note: str | None = None) -> str:
        """Read lines of a file."""
        called.append(("read_lines", {"path": path, "start": window.start, "mode": mode}))
        return f"{len(window.tags)} tags"

    @function_tool
    def score(value: Annotated[float, Field(gt=0, lt=1)], strict: bool) -> str:
        """Score a value."""
        called.append(("score", {"value": value, "strict": strict}))
        return "ok"

    return Agent(name="any-harness", instructions="Use the tools.", tools=[read_lines, score], model=model)


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_any_agent_runs_through_its_tools_then_answers(tmp_path, api):
    called: list[tuple[str, dict]] = []
    path = tmp_path / "traces.jsonl"
    with ModelServerProcess(DEFAULT_POLICY, {"seed": 3, "calls": 4}) as server, sdk_processors_restored():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="any", max_retries=0)
        model_cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        processor = setup_tracing(path=path)
        result = Runner.run_sync(build_agent(model_cls(model="stand-in", openai_client=client), called),
                                 "go", run_config=RunConfig(workflow_name="try-it"))
        processor.shutdown()
    assert len(called) == 4  # each call passed the SDK's validation and ran the tool
    assert result.final_output.startswith("Done after calling ")
    lines = check_file(path)
    tools = [x for x in lines if x[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_TOOL]
    assert len(tools) == 4 and all(x[canonical.STATUS]["code"] != canonical.STATUS_ERROR for x in tools)


def test_the_same_seed_and_question_make_the_same_calls():
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 7},
                                               "x": {"type": "number", "exclusiveMinimum": 0,
                                                     "exclusiveMaximum": 1},
                                               "s": {"type": "string", "minLength": 12}},
              "required": ["n", "x", "s"]}
    values = [example(schema, schema, random.Random(9)) for _ in range(2)]
    assert values[0] == values[1]
    assert 5 <= values[0]["n"] <= 7 and 0 < values[0]["x"] < 1 and len(values[0]["s"]) >= 12


def test_the_default_policy_is_the_generic_one_and_takes_its_options():
    assert isinstance(load_policy(DEFAULT_POLICY, None), GenericPolicy)
    assert load_policy(DEFAULT_POLICY, {"calls": 0}).calls == 0
    with pytest.raises(ValueError, match="calls"):
        GenericPolicy(calls=-1)
