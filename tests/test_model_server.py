"""The model server against the real `openai` client and real Agents SDK runs."""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack

import openai
import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel

from halo_live.demo.model_process import ModelServerProcess
from halo_live.demo.model_server import ModelServer, Reply, ScriptedPolicy, ToolCall, Turn

APIS = ["responses", "chat"]


def make_model(api: str, server: ModelServer, model: str = "demo-model"):
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    if api == "responses":
        return OpenAIResponsesModel(model=model, openai_client=client), client
    return OpenAIChatCompletionsModel(model=model, openai_client=client), client


@function_tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def run(agent: Agent, client: openai.AsyncOpenAI, prompt: str, streamed: bool):
    config = RunConfig(tracing_disabled=True)

    async def go():
        try:
            return await attempt()
        finally:  # close the pool inside its loop, so no transport outlives asyncio.run
            await client.close()

    async def attempt():
        if not streamed:
            return await Runner.run(agent, prompt, run_config=config)
        result = Runner.run_streamed(agent, prompt, run_config=config)
        deltas = []
        async for event in result.stream_events():
            if event.type == "raw_response_event" and getattr(event.data, "type", "") in (
                "response.output_text.delta",
            ):
                deltas.append(event.data.delta)
        result.deltas = deltas
        return result

    return asyncio.run(go())


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize("api", APIS)
def test_text_reply_reaches_final_output_with_usage(api, streamed):
    policy = ScriptedPolicy([Reply(text="hello from the model", input_tokens=42, output_tokens=7)])
    with ModelServer(policy) as server:
        # The SDK asks a non-OpenAI endpoint for stream usage only when told to.
        model, client = make_model(api, server)
        agent = Agent(name="greeter", instructions="Be brief.", model=model,
                      model_settings=ModelSettings(include_usage=True))
        result = run(agent, client, "hi", streamed)
    assert result.final_output == "hello from the model"
    assert result.context_wrapper.usage.input_tokens == 42
    assert result.context_wrapper.usage.output_tokens == 7
    if streamed:
        assert "".join(result.deltas) == "hello from the model"
    [turn] = server.turns
    assert (turn.api, turn.stream, turn.model) == (api, streamed, "demo-model")
    assert turn.instructions == "Be brief."
    assert turn.messages[-1] == {"role": "user", "content": "hi"}


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize("api", APIS)
def test_tool_call_round_trip(api, streamed):
    def answer(turn: Turn) -> Reply:
        tool_msg = turn.messages[-1]
        assert tool_msg["role"] == "tool"
        return Reply(text=f"the sum is {tool_msg['content']}")

    policy = ScriptedPolicy([Reply(tool_calls=[ToolCall("add", json.dumps({"a": 2, "b": 3}))]), answer])
    with ModelServer(policy) as server:
        model, client = make_model(api, server)
        agent = Agent(name="calc", instructions="Use tools.", tools=[add], model=model)
        result = run(agent, client, "2+3?", streamed)
    assert result.final_output == "the sum is 5"
    first, second = server.turns
    assert [t["name"] for t in first.tools] == ["add"]
    assert first.tools[0]["description"] == "Add two integers."
    call = second.messages[-2]["tool_calls"][0]
    assert call["function"]["name"] == "add"
    assert json.loads(call["function"]["arguments"]) == {"a": 2, "b": 3}
    assert second.messages[-1]["tool_call_id"] == call["id"]


@pytest.mark.parametrize("api", APIS)
def test_error_reply_is_an_http_error_the_client_raises(api):
    policy = ScriptedPolicy([Reply(error_status=400, error_message="context too long")])
    with ModelServer(policy) as server:
        model, client = make_model(api, server)
        with pytest.raises(openai.BadRequestError) as info:
            run(Agent(name="x", model=model), client, "hi", streamed=False)
    assert info.value.status_code == 400
    assert "context too long" in str(info.value)


def test_rate_limit_status_and_models_listing():
    policy = ScriptedPolicy([Reply(error_status=429, error_message="slow down")])
    with ModelServer(policy) as server, ExitStack() as stack:
        client = stack.enter_context(openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0))
        assert [m.id for m in client.models.list()] == ["halo-demo"]
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_broken_policy_answers_500():
    def broken(turn: Turn) -> Reply:
        raise RuntimeError("boom")

    with ModelServer(broken) as server, ExitStack() as stack:
        client = stack.enter_context(openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0))
        with pytest.raises(openai.InternalServerError, match="boom"):
            client.responses.create(model="m", input="x")


def test_chat_stream_sends_usage_chunk_only_when_asked():
    with ModelServer(ScriptedPolicy([Reply(text="a b c")] * 2)) as server, ExitStack() as stack:
        client = stack.enter_context(openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0))
        msgs = [{"role": "user", "content": "x"}]
        with_usage = list(client.chat.completions.create(
            model="m", messages=msgs, stream=True, stream_options={"include_usage": True}))
        without = list(client.chat.completions.create(model="m", messages=msgs, stream=True))
    assert with_usage[-1].usage is not None and with_usage[-1].choices == []
    assert all(chunk.usage is None for chunk in without)
    assert "".join(c.choices[0].delta.content or "" for c in without if c.choices) == "a b c"


def test_separate_process_serves_a_policy_named_on_the_command_line():
    spawn = ModelServerProcess("halo_live.demo.model_server:ScriptedPolicy", {"replies": []})
    with spawn as proc, openai.OpenAI(base_url=proc.base_url, api_key="k", max_retries=0) as client:
        assert proc.base_url.startswith("http://127.0.0.1:")
        assert client.responses.create(model="m", input="hello").output_text == "done"


def test_separate_process_with_a_bad_policy_fails_with_one_line():
    with pytest.raises(RuntimeError, match="model server did not start: .*no_such_module"):
        ModelServerProcess("no_such_module:policy").start()
