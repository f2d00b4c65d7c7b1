"""`halo index TRACE_PATH [--index-dir DIR] [--follow]`: build or update the trace index.

Catches up once and prints a one-line summary; with `--follow`, keeps the
index current as the file grows until SIGINT/SIGTERM. A progress bar shows on
a terminal when the backlog is big enough to take a while.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli.paths import check_trace_path, index_dir_for
from halo_live.engine.cli.progress import Bar
from halo_live.indexer import DatasetError, IndexStorageError, TraceIndex



def add_arguments(parser) -> None:
    parser.add_argument("trace_path", metavar="TRACE_PATH",
                        help="a canonical .jsonl file, a folder of *.jsonl shards, or a glob")
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: <file>.halo-index/ or <folder>/.halo-index/)")
    parser.add_argument("--follow", action="store_true",
                        help="keep the index current as the files grow, until interrupted")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="parse processes for a big backlog (default: one per CPU)")


EXAMPLES = """\
  halo index traces.jsonl                  build or catch up the index once, print a summary
  halo index traces/ --follow              keep a folder of shards indexed as it grows (Ctrl-C stops)
  halo index 'runs/*/traces.jsonl'         a glob (quoted, so halo expands it, also for files to come)
  halo index /mnt/ro/traces/ --index-dir /tmp/idx   traces on read-only storage
"""


def _summary(idx, stats) -> str:
    with idx.snapshot() as snap:
        t = snap.totals()
    verb = "re-indexed" if stats.reset else "indexed"
    parts = [f"{verb} {stats.spans:,} new spans ({stats.bytes_read / 1e6:,.1f} MB) in {stats.seconds:.2f}s",
             f"{t.total_traces:,} traces / {t.total_spans:,} spans in {t.files} file(s)",
             f"{t.error_trace_count:,} with errors",
             f"{t.in_progress_traces:,} in progress"]
    if t.bad_lines:
        parts.append(f"{t.bad_lines:,} bad lines skipped")
    if t.duplicate_spans:
        parts.append(f"{t.duplicate_spans:,} duplicate span lines counted once")
    if stats.pending_bytes:
        parts.append(f"{stats.pending_bytes:,} bytes of a partial last line pending")
    return "; ".join(parts) + f"; index: {idx.index_dir}"


def run(args) -> int:
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, not {args.workers}", EXIT_USAGE)
    check_trace_path(args.trace_path)
    try:
        idx = TraceIndex.open(args.trace_path, index_dir_for(args.trace_path, args.index_dir),
                              workers=args.workers)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot open the index: {exc}") from None
    try:
        bar = Bar()
        try:
            stats = idx.catch_up(bar)
        finally:
            bar.close()
        print(_summary(idx, stats), flush=True)
        if args.follow:
            _follow(idx)
            with idx.snapshot() as snap:
                t = snap.totals()
            print(f"stopped following; {t.total_traces:,} traces / {t.total_spans:,} spans indexed", flush=True)
        return 0
    except IndexStorageError as exc:
        raise CliError(str(exc)) from None
    finally:
        idx.close()


def _follow(idx) -> None:
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"following {idx.dataset.pattern} (Ctrl-C to stop)", flush=True)

        def on_update(stats) -> None:
            stamp = time.strftime("%H:%M:%S")
            note = " (file replaced: re-indexed)" if stats.reset else ""
            print(f"{stamp} +{stats.spans:,} spans, +{stats.new_traces:,} traces"
                  f"{f', {stats.bad_lines} bad lines' if stats.bad_lines else ''}{note}", flush=True)

        idx.follow(stop, on_update=on_update)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
