"""One harness run under a real third-party instrumentor (run as a subprocess by the conformance tests).

    python -m tests._instrumented_run INSTRUMENTOR OUT.jsonl [--http URL] [--grpc HOST:PORT]
        [--logs-http URL] [--logs-grpc HOST:PORT]

INSTRUMENTOR is `openinference`, `genai` (opentelemetry-instrumentation-openai-v2 +
opentelemetry-util-genai), `openllmetry` or `logfire`. The run's spans go through
`HaloSpanExporter` (a SimpleSpanProcessor: one span per export, the hardest case for
agent names) and, when given, to `halo serve` over OTLP/HTTP (batched) and OTLP/gRPC
(one span per request). With `--logs-*`, GenAI log events go to `halo serve`'s
`/v1/logs` too, each as it is emitted (before its span ends, as util-genai emits
it), and the HTTP spans wait for shutdown. Each instrumentor patches process-wide state, hence one
process per run.

The harness: three tasks of an Agents SDK `triage` agent (input guardrail) that hands
off to a `worker` agent with tools `lookup` and `explode` (task 2's call fails), against
the stub model server. For `genai`, which does not instrument the Agents SDK, the same
three tasks are a plain chat-completions tool loop with agent and tool spans from
`opentelemetry-util-genai`. The agents run on Chat Completions, or on the Responses
API with `HARNESS_API=responses`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from halo_live.demo.model_server import ModelServer, Reply, ToolCall, Turn

MODEL = "stub-model"
TASKS = ("find alpha", "break beta", "find gamma")


def policy(turn: Turn) -> Reply:
    """Triage hands off; the worker calls a tool, then answers with what the tool said."""
    instructions = turn.instructions or ""
    last = turn.messages[-1] if turn.messages else {}
    task = next((m.get("content") for m in turn.messages if m.get("role") == "user"), "") or ""
    if isinstance(task, list):
        task = " ".join(part.get("text", "") for part in task if isinstance(part, dict))
    if "triage" in instructions:
        return Reply(tool_calls=[ToolCall("transfer_to_worker", "{}")])
    called = {call.get("id"): call.get("function", call).get("name")
              for m in turn.messages for call in m.get("tool_calls") or []}
    if last.get("role") == "tool" and called.get(last.get("tool_call_id")) in ("lookup", "explode"):
        return Reply(text=f"answer: {str(last.get('content'))[:60]}", input_tokens=40, output_tokens=6)
    key = task.split()[-1] if task else "x"
    tool = "explode" if task.startswith("break") else "lookup"
    return Reply(tool_calls=[ToolCall(tool, json.dumps({"key": key}))], input_tokens=30,
                 output_tokens=5)


def lookup_impl(key: str) -> str:
    return f"value of {key}"


def explode_impl(key: str) -> str:
    raise ValueError(f"cannot break {key}")


async def run_agents_sdk(base_url: str) -> None:
    from agents import (
        Agent, GuardrailFunctionOutput, RunConfig, Runner, function_tool, input_guardrail, set_tracing_disabled,
    )
    from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
    from openai import AsyncOpenAI

    set_tracing_disabled(False)
    client = AsyncOpenAI(base_url=base_url, api_key="test")
    if os.environ.get("HARNESS_API") == "responses":
        from agents.models.openai_responses import OpenAIResponsesModel
        model = OpenAIResponsesModel(model=MODEL, openai_client=client)
    else:
        model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)

    @function_tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return lookup_impl(key)

    @function_tool
    def explode(key: str) -> str:
        """Break a key."""
        return explode_impl(key)

    @input_guardrail
    async def polite(ctx, agent, text) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info={"checked": True}, tripwire_triggered=False)

    worker = Agent(name="worker", instructions="You are the worker.", model=model, tools=[lookup, explode])
    triage = Agent(name="triage", instructions="You are triage; hand off.", model=model,
                   handoffs=[worker], input_guardrails=[polite])
    for task in TASKS:
        await Runner.run(triage, task, run_config=RunConfig(workflow_name="harness"))


def run_genai_loop(base_url: str) -> None:
    from openai import OpenAI
    from opentelemetry.util.genai.handler import get_telemetry_handler

    handler = get_telemetry_handler()
    client = OpenAI(base_url=base_url, api_key="test")
    tools = [{"type": "function", "function": {
        "name": name, "description": f"{name} a key",
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}},
                       "required": ["key"]}}} for name in ("lookup", "explode")]
    impls = {"lookup": lookup_impl, "explode": explode_impl}
    for task in TASKS:
        with handler.invoke_local_agent(agent_name="worker", request_model=MODEL):
            messages = [{"role": "system", "content": "You are the worker."},
                        {"role": "user", "content": task}]
            for _ in range(3):
                reply = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
                message = reply.choices[0].message
                if not message.tool_calls:
                    break
                messages.append(message.model_dump(exclude_none=True))
                for call in message.tool_calls:
                    name, args = call.function.name, call.function.arguments
                    invocation = handler.tool(name, tool_call_id=call.id, tool_type="function")
                    invocation.arguments = args
                    try:
                        with invocation:
                            result = impls[name](**json.loads(args))
                            invocation.tool_result = result
                    except ValueError as exc:
                        result = f"error: {exc}"
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("instrumentor", choices=("openinference", "genai", "openllmetry", "logfire"))
    parser.add_argument("out")
    parser.add_argument("--http")
    parser.add_argument("--grpc")
    parser.add_argument("--logs-http")
    parser.add_argument("--logs-grpc")
    args = parser.parse_args(argv)

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from halo_live import HaloSpanExporter

    processors = [SimpleSpanProcessor(HaloSpanExporter(args.out, project_id="conformance"))]
    if args.http:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        delay = 600_000 if args.logs_http else 5000  # after the logs, whatever the machine's speed
        processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=args.http, timeout=10),
                                             schedule_delay_millis=delay))
    if args.grpc:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
        processors.append(SimpleSpanProcessor(Grpc(endpoint=args.grpc, insecure=True, timeout=10)))

    from agents.tracing import set_trace_processors

    set_trace_processors([])  # no upload to the OpenAI platform; the instrumentor adds its own
    resource = Resource.create({"service.name": f"harness-{args.instrumentor}"})
    if args.instrumentor == "logfire":
        import logfire

        logfire.configure(send_to_logfire=False, console=False, service_name=f"harness-{args.instrumentor}",
                          additional_span_processors=processors, metrics=False)
        logfire.instrument_openai_agents()
        provider = None
    else:
        provider = TracerProvider(resource=resource)
        for processor in processors:
            provider.add_span_processor(processor)
    if args.instrumentor == "openinference":
        from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
        OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    elif args.instrumentor == "openllmetry":
        from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor
        OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    elif args.instrumentor == "genai":
        from opentelemetry import trace
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        trace.set_tracer_provider(provider)  # util-genai's handler takes the global provider
        OpenAIInstrumentor().instrument(tracer_provider=provider)

    logger_provider = None
    if args.logs_http or args.logs_grpc:
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

        logger_provider = LoggerProvider(resource=resource)
        if args.logs_http:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(
                OTLPLogExporter(endpoint=args.logs_http, timeout=10)))
        if args.logs_grpc:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(
                GrpcLogs(endpoint=args.logs_grpc, insecure=True, timeout=10)))
        set_logger_provider(logger_provider)

    with ModelServer(policy) as server:
        if args.instrumentor == "genai":
            run_genai_loop(server.base_url)
        else:
            asyncio.run(run_agents_sdk(server.base_url))
    if logger_provider is not None:
        logger_provider.shutdown()
    if provider is not None:
        provider.shutdown()
    else:
        import logfire
        logfire.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
