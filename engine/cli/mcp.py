"""`halo mcp TRACE_PATH`: the trace tools for coding agents, over the Model Context Protocol.

stdio by default, which is what a coding agent launches; `--http [HOST:]PORT`
serves streamable HTTP at /mcp instead, on 127.0.0.1 unless a host is named.
With a token (`--token` or $HALO_MCP_TOKEN) every HTTP request must carry it
as a bearer token; listening beyond loopback requires one. `--budget` bounds
every answer in characters of compact JSON (argument, then $HALO_MCP_BUDGET,
then 40,000).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import socket
import sys

import anyio

from halo_live.engine import budget as b
from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli.paths import add_stuck_after, check_trace_path, index_dir_for
from halo_live.engine.mcp_server import DEFAULT_BUDGET_CHARS, HTTP_PATH, HaloMcpServer
from halo_live.engine.store import TraceStore

TOKEN_ENV = "HALO_MCP_TOKEN"
BUDGET_ENV = "HALO_MCP_BUDGET"
GRACE_SECONDS = 3  # open streams get this long to close on SIGINT/SIGTERM

EXAMPLES = """\
  halo mcp traces/                                   stdio: what Claude Code, Cursor or Codex launch
  claude mcp add halo -- halo mcp "$PWD/traces"      add it to Claude Code (see the README for others)
  halo mcp traces/ --http 8765                       streamable HTTP at http://127.0.0.1:8765/mcp
  halo mcp traces/ --http 0.0.0.0:8765 --token s3cret   reachable from other machines, token required
  halo mcp traces/ --budget 20000                    smaller answers (characters of compact JSON)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo mcp` flags."""
    parser.add_argument("trace_path", metavar="TRACE_PATH",
                        help="a .jsonl file, a folder of .jsonl shards, or a quoted glob")
    add_stuck_after(parser)
    parser.add_argument("--http", default=None, metavar="[HOST:]PORT",
                        help="serve streamable HTTP at /mcp on this port (host 127.0.0.1 unless "
                             "given; port 0 picks a free one) instead of stdio")
    parser.add_argument("--token", default=None,
                        help=f"require 'Authorization: Bearer TOKEN' over HTTP (default ${TOKEN_ENV}); "
                             "needed to listen beyond loopback")
    parser.add_argument("--budget", type=int, default=None, metavar="CHARS",
                        help=f"largest answer, in characters of compact JSON (default ${BUDGET_ENV}, "
                             f"else {DEFAULT_BUDGET_CHARS:,}; at least {b.MIN_BUDGET_CHARS:,})")
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: beside the traces)")
    parser.add_argument("--allow-code", action="store_true",
                        help="also offer run_code, which runs the client's Python in a sandbox (off by default)")


def parse_listen(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[V6]:PORT` as (host, port); 127.0.0.1 when no host is given."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise CliError(f"--http wants [HOST:]PORT, such as 8765 or 127.0.0.1:8765, not {text!r}", EXIT_USAGE)
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_budget(value: int | None) -> int:
    """--budget, else $HALO_MCP_BUDGET, else the default; a usage error when too small or not a number."""
    if value is None:
        env = os.environ.get(BUDGET_ENV, "").strip()
        try:
            value = int(env) if env else DEFAULT_BUDGET_CHARS
        except ValueError:
            raise CliError(f"${BUDGET_ENV} must be a number of characters, not {env!r}", EXIT_USAGE) from None
    try:
        return b.check_budget(value)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def run(args: argparse.Namespace) -> int:
    """Check everything that can be checked before serving, then serve until the client goes."""
    budget = resolve_budget(args.budget)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    listen = parse_listen(args.http) if args.http is not None else None
    if listen and not token and not is_loopback(listen[0]):
        raise CliError(f"refusing to serve {listen[0]} without a token: anyone who can reach it would read "
                       f"the traces; pass --token or set ${TOKEN_ENV}", EXIT_USAGE)
    check_trace_path(args.trace_path)
    index_dir = index_dir_for(args.trace_path, args.index_dir)
    # opened on the server's own thread: the client's handshake is answered while a backlog indexes
    server = HaloMcpServer(lambda: TraceStore.open(args.trace_path, index_dir, stuck_after=args.stuck_after),
                           budget=budget,
                           allow_code=args.allow_code)
    try:
        if listen is None:
            if sys.stdin.isatty():
                print("halo mcp: speaks MCP on stdin/stdout for a coding agent to launch (see the README); "
                      "--http serves it over HTTP", file=sys.stderr)
            print(f"halo mcp: {len(server.specs)} tools over {args.trace_path} on stdio, answers within "
                  f"{budget:,} characters", file=sys.stderr, flush=True)
            anyio.run(server.serve_stdio)
        else:
            anyio.run(_serve_http, server, listen[0], listen[1], token, budget)
    finally:
        server.close()
    return 0


async def _serve_http(server: HaloMcpServer, host: str, port: int, token: str | None, budget: int) -> None:
    import uvicorn

    class Uvicorn(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # SIGINT/SIGTERM stop it below, to exit 0 rather than re-raised
            yield

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app = server.http_app(host=host, token=token)
    web = Uvicorn(uvicorn.Config(app, log_level="warning", lifespan="on",
                                 timeout_graceful_shutdown=GRACE_SECONDS))

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                web.should_exit = True
                return

    print(f"halo mcp: {len(server.specs)} tools at http://{shown}:{bound}{HTTP_PATH} "
          f"({'bearer token required' if token else 'no token'}), answers within {budget:,} characters",
          file=sys.stderr, flush=True)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stop_on_signal)
        await web.serve(sockets=[sock])
        tasks.cancel_scope.cancel()
