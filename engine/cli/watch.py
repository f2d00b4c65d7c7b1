"""`halo watch TRACE_PATH`: a live terminal view of a run, its tasks in flight and the stuck ones.

A thin layer over `halo_live.engine.watch.Watcher` (the facts) and
`halo_live.engine.watch_view` (the drawing). `--once` prints one frame,
`--json` the same facts as JSON (one object per refresh, or one with
`--once`). A path that does not exist yet is waited for; Ctrl-C exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli.paths import add_stuck_after, prepare
from halo_live.engine.pricing import PRICES_TAKEN

EXAMPLES = """\
  halo watch traces/                          full-screen, refreshed every second (Ctrl-C exits)
  halo watch traces/ --expect 200             with an ETA for 200 tasks
  halo watch traces/ --stuck-after 120        a task silent for 2 minutes is stuck
  halo watch traces.jsonl --once              one frame, then exit
  halo watch traces/ --once --json | jq .traces    the same facts as JSON, for scripts and CI
  halo watch traces/ --prices prices.json     price more models: {"my-model": [0.5, 2.0]} (USD per 1M in/out)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo watch` flags."""
    parser.add_argument("trace_path", metavar="TRACE_PATH",
                        help="a .jsonl file, a folder of .jsonl shards, or a glob (may not exist yet)")
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--json", action="store_true",
                        help="print the facts as JSON instead of the view (one object per refresh; "
                             "with --once, one)")
    parser.add_argument("--expect", type=int, default=None, metavar="N",
                        help="how many tasks the run will have: shows progress and an ETA")
    add_stuck_after(parser)
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between refreshes (default 1)")
    parser.add_argument("--prices", default=None, metavar="FILE",
                        help='model prices to add or override, JSON {"model": [input_usd_per_1m, '
                             'output_usd_per_1m]}: tokens without a reported cost are priced at them '
                             f'(built-in: OpenAI and Anthropic list prices as of {PRICES_TAKEN})')
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: beside the traces)")


def run(args: argparse.Namespace) -> int:
    """Watch until Ctrl-C (or print one frame)."""
    from halo_live.engine.pricing import Prices, PricesError, load_prices
    from halo_live.engine.watch import Watcher

    try:
        prices = Prices(load_prices(args.prices) if args.prices is not None else None)
    except PricesError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.expect is not None and args.expect < 1:
        raise CliError(f"--expect must be at least 1, not {args.expect}", EXIT_USAGE)
    if not args.interval > 0 or args.interval > 3600:
        raise CliError(f"--interval must be between 0 and 3600 seconds, not {args.interval}", EXIT_USAGE)
    index_dir = args.index_dir
    if not args.trace_path.strip():
        raise CliError("TRACE_PATH is empty: give a .jsonl file, a folder of shards, or a glob", EXIT_USAGE)
    if os.path.exists(args.trace_path):  # a path that is not there yet is waited for, not refused
        # refuse a non-JSONL file; a big backlog indexes first, with a progress bar on a terminal
        index_dir = prepare(args.trace_path, index_dir, note_empty=False)
    watcher = Watcher(args.trace_path, index_dir=index_dir, expect=args.expect, stuck_after=args.stuck_after,
                      prices=prices)
    try:
        if args.json:
            return _json(watcher, once=args.once, interval=args.interval)
        return _view(watcher, once=args.once, interval=args.interval)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a watch ends
    finally:
        watcher.close()


def _json(watcher, *, once: bool, interval: float) -> int:
    while True:
        sys.stdout.write(json.dumps(watcher.frame(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        if once:
            return 0
        time.sleep(interval)


def _view(watcher, *, once: bool, interval: float) -> int:
    from halo_live.engine.cli import console as make_console
    from halo_live.engine.watch_view import render, show

    console = make_console()
    if once or not console.is_terminal:
        if not once:
            raise CliError("the live view needs a terminal: use --once, or --json for a stream", EXIT_USAGE)
        console.print(render(watcher.frame(), final=True))
        return 0
    last = None
    try:
        last = show(watcher, console, interval=interval, screen=True)
    finally:
        if last is None:
            last = watcher.frame()
        console.print(render(last, final=True))  # the last frame stays on screen after the full screen
    return 0
