"""An OpenAI-compatible model server that plays a policy (tests and the offline demo).

    from halo_live.demo.model_server import ModelServer, ScriptedPolicy, Reply, ToolCall
    policy = ScriptedPolicy([Reply(tool_calls=[ToolCall("add", '{"a": 1, "b": 2}')]),
                             Reply(text="3")])
    with ModelServer(policy) as server:       # aiohttp in a background thread, port 0
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
        ...
        server.turns                          # every Turn the policy was asked

It serves POST /v1/responses and POST /v1/chat/completions, streamed (SSE) and
not, with usage and tool calls, as the real `openai` client and the Agents SDK
parse them, plus GET /v1/models. Any API key is accepted. A policy is any
callable `Turn -> Reply`; a `Reply` with `error_status` is answered as that
HTTP error with an OpenAI-style error body.

`python -m halo_live.demo.model_server --port N [--policy MODULE:NAME] [--policy-kwargs JSON]`
serves from a separate process and prints `listening on URL` once ready; without
`--policy` it plays `halo_live.demo.generic_policy`, which drives any agent
through its tools and then answers.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from halo_live.demo import model_wire as wire


@dataclass
class ToolCall:
    """One function call the model asks for; `arguments` is JSON text."""

    name: str
    arguments: str = "{}"
    call_id: str = ""  # filled with a fresh id when empty


@dataclass
class Reply:
    """What the model answers for one turn (text, tool calls, or an HTTP error)."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int | None = None  # estimated from the request when None
    output_tokens: int | None = None  # estimated from the reply when None
    error_status: int | None = None
    error_message: str = ""


@dataclass
class Turn:
    """One request as the policy sees it, normalized to chat shape for both APIs.

    `instructions` holds the Responses `instructions` or the Chat system message(s);
    `messages` are the rest (role, content, tool_calls, tool_call_id).
    """

    api: str  # "responses" | "chat"
    model: str
    stream: bool
    instructions: str | None
    messages: list[dict]
    tools: list[dict]  # [{"name", "description", "parameters"}]
    body: dict  # the raw request


Policy = Callable[[Turn], Reply]


class ScriptedPolicy:
    """Plays `replies` in order (a Reply, or a callable Turn -> Reply), then Reply(text="done")."""

    def __init__(self, replies: Sequence[Reply | Callable[[Turn], Reply]]) -> None:
        self._replies = list(replies)
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, turn: Turn) -> Reply:
        with self._lock:
            if self._next >= len(self._replies):
                return Reply(text="done")
            reply = self._replies[self._next]
            self._next += 1
        return reply(turn) if callable(reply) else reply


class ModelServer:
    """The server in a background thread with its own event loop; a context manager."""

    def __init__(self, policy: Policy, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.policy = policy
        self.host = host
        self.port = port
        self.turns: list[Turn] = []
        self._turns_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "ModelServer":
        ready = threading.Event()
        # Enough threads that every in-flight request can "think" at once (many benchmark workers).
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="model-policy")
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to start()'s caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="model-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._executor.shutdown(wait=False)
            raise failure[0]
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        """Stop serving and join the thread; safe twice."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers ------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": "halo-demo", "object": "model", "created": 0, "owned_by": "halo-live"}]
        return web.json_response({"object": "list", "data": data})

    async def _turn(self, request: web.Request, api: str) -> tuple[Turn, Reply] | web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
        except ValueError as exc:
            return _error(400, f"invalid JSON body: {exc}")
        normalize = wire.normalize_responses if api == "responses" else wire.normalize_chat
        instructions, messages, tools = normalize(body)
        turn = Turn(api=api, model=str(body.get("model") or "halo-demo"),
                    stream=bool(body.get("stream")), instructions=instructions,
                    messages=messages, tools=tools, body=body)
        with self._turns_lock:
            self.turns.append(turn)
        try:
            # In a worker thread: a policy may think (sleep) without stalling other requests.
            reply = await asyncio.get_running_loop().run_in_executor(self._executor, self.policy, turn)
        except Exception as exc:  # a broken policy is the server's 500, as a real API's bug would be
            return _error(500, f"policy failed: {type(exc).__name__}: {exc}")
        if reply.error_status:
            return _error(reply.error_status, reply.error_message)
        return turn, reply

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        got = await self._turn(request, "responses")
        if isinstance(got, web.Response):
            return got
        turn, reply = got
        calls = _calls(reply)
        usage = wire.responses_usage(*_tokens(turn, reply, calls))
        items = wire.responses_items(reply.text, calls)
        if not turn.stream:
            return web.json_response(wire.response_object(turn.model, turn.body, items, usage))
        return await _stream(request, wire.responses_events(turn.model, turn.body, items, usage))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        got = await self._turn(request, "chat")
        if isinstance(got, web.Response):
            return got
        turn, reply = got
        calls = _calls(reply)
        usage = wire.chat_usage(*_tokens(turn, reply, calls))
        if not turn.stream:
            return web.json_response(wire.chat_completion(turn.model, reply.text, calls, usage))
        options = turn.body.get("stream_options") or {}
        chunks = wire.chat_chunks(turn.model, reply.text, calls,
                                  usage if options.get("include_usage") else None)
        return await _stream(request, chunks)


def _error(status: int, message: str) -> web.Response:
    return web.json_response(wire.error_body(message, status), status=status)


def _calls(reply: Reply) -> list[tuple[str, str, str]]:
    return [(c.call_id or wire.new_id("call"), c.name, c.arguments) for c in reply.tool_calls]


def _tokens(turn: Turn, reply: Reply, calls: list[tuple[str, str, str]]) -> tuple[int, int]:
    if reply.input_tokens is not None:
        tokens_in = reply.input_tokens
    else:
        prompt = (turn.instructions or "") + json.dumps(turn.messages) + json.dumps(turn.tools)
        tokens_in = wire.estimate_tokens(prompt)
    if reply.output_tokens is not None:
        tokens_out = reply.output_tokens
    else:
        tokens_out = wire.estimate_tokens((reply.text or "") + "".join(n + a for _, n, a in calls))
    return tokens_in, tokens_out


async def _stream(request: web.Request, events) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    for event in events:
        await response.write(event)
    await response.write_eof()
    return response


# -- separate process --------------------------------------------------------------


DEFAULT_POLICY = "halo_live.demo.generic_policy:GenericPolicy"


def load_policy(spec: str, kwargs: dict[str, Any] | None = None) -> Policy:
    """`MODULE:NAME` -> the policy; with `kwargs`, or when NAME is a class, NAME is a factory
    called with them."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"policy must be MODULE:NAME, got {spec!r}")
    target = getattr(importlib.import_module(module_name), attr)
    if kwargs is not None or isinstance(target, type):
        return target(**(kwargs or {}))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m halo_live.demo.model_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--policy", default=DEFAULT_POLICY,
                        help="MODULE:NAME of a policy (Turn -> Reply); default: a generic policy that "
                             "calls any agent's tools with valid arguments, then answers")
    parser.add_argument("--policy-kwargs", default=None,
                        help="JSON object; when given, NAME is a factory called with it (for the "
                             'default policy: {"seed": N, "calls": N})')
    args = parser.parse_args(argv)
    try:
        kwargs = json.loads(args.policy_kwargs) if args.policy_kwargs is not None else None
        policy = load_policy(args.policy, kwargs)
        server = ModelServer(policy, host=args.host, port=args.port).start()
    except (ValueError, ImportError, AttributeError, OSError, TypeError) as exc:
        print(f"model_server: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening on {server.base_url}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
