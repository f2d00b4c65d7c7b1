"""`halo ui TRACE_PATH`: a live web view of the traces (Run, Traces, Trace pages).

Serves the page shipped in `halo_live.engine.ui` on 127.0.0.1 and a free port
by default and prints the URL; the index follows the files while it runs, so
a benchmark that is still writing shows up as it goes. Any other address
needs a token (`--token` or $HALO_UI_TOKEN), or the command refuses to start.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser

from halo_live.engine.cli import CliError
from halo_live.engine.cli.paths import add_stuck_after, prepare

EXAMPLES = """\
  halo ui traces/                          serve on 127.0.0.1, a free port; prints the URL
  halo ui traces/ --port 8765 --open       a fixed port, and open a browser tab
  HALO_UI_TOKEN=s3cret halo ui traces/ --host 0.0.0.0   reachable from other machines, with a token
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from halo_live.engine.ui.server import DEFAULT_HOST, TOKEN_ENV

    parser.add_argument("trace_path", metavar="TRACE_PATH",
                        help="a .jsonl file, a folder of .jsonl shards, or a glob")
    add_stuck_after(parser)
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}; any other needs a token)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one, printed)")
    parser.add_argument("--token", default=None,
                        help=f"require this token on every request (default ${TOKEN_ENV})")
    parser.add_argument("--open", action="store_true", help="open the page in a web browser")
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: beside the traces)")


def run(args: argparse.Namespace) -> int:
    from halo_live.engine.store import ToolError, TraceStore
    from halo_live.engine.ui.server import TOKEN_ENV, UiServer
    from halo_live.indexer import TraceIndex

    token = args.token or os.environ.get(TOKEN_ENV) or None
    index_dir = prepare(args.trace_path, args.index_dir)  # checks the path; a read-only place -> cache
    try:
        store = TraceStore.open(args.trace_path, index_dir, stuck_after=args.stuck_after)
    except ToolError as exc:
        raise CliError(str(exc)) from None
    index = TraceIndex.open(args.trace_path, index_dir)  # the follower's handle on the same environment

    def ready(url: str) -> None:
        print(f"halo ui: serving {args.trace_path} at {url}", flush=True)
        print("halo ui: press Ctrl-C to stop", file=sys.stderr, flush=True)
        if args.open:
            webbrowser.open(url)

    try:
        try:
            server = UiServer(store, index, args.trace_path, host=args.host, port=args.port, token=token)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        server.serve_forever(on_ready=ready)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        print("halo ui: stopped", file=sys.stderr)
    finally:
        index.close()
        store.close()
    return 0
