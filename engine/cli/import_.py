"""`halo import phoenix|langfuse|otlp-json ... OUT`: traces from where teams already keep them.

A thin layer over `halo_live.exporter.importers`: it builds the importer,
shows a progress bar on a terminal, prints a summary (traces, spans, what was
skipped and why) and, with `--follow`, keeps importing until SIGINT/SIGTERM.
Every expected failure is one line and exit 1; OUT only ever gains whole lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime, timezone

from halo_live.engine.cli import EXIT_USAGE, CliError

EXAMPLES = """\
  halo import otlp-json collector/traces.json traces.jsonl      the Collector's file exporter (.gz/.zst too)
  halo import phoenix --url http://127.0.0.1:6006 --project my-agent traces.jsonl
  LANGFUSE_PUBLIC_KEY=pk-... LANGFUSE_SECRET_KEY=sk-... halo import langfuse --host http://127.0.0.1:3000 traces.jsonl
  halo import phoenix --url http://127.0.0.1:6006 --project my-agent --follow traces.jsonl &  halo index traces.jsonl --follow
Re-running an import continues where it stopped (OUT.halo-import.json) and never writes a span twice.
"""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", required=True,
                                parser_class=type(parser))

    def common(p, *, since: bool = True) -> None:
        if since:
            p.add_argument("--since", metavar="TIME", default=None,
                           help="only spans that started at or after TIME (ISO-8601, e.g. 2025-06-01 "
                                "or 2025-06-01T12:00:00Z)")
        p.add_argument("--follow", action="store_true",
                       help="keep importing new traces as they appear, until interrupted")
        p.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                       help="with --follow, how often to look for new traces (default: 2 for "
                            "servers, 0.5 for a file)")
        p.add_argument("--project-id", default="", metavar="ID",
                       help="inference.project_id for spans that name none")
        p.add_argument("out", metavar="OUT", help="the canonical .jsonl file to append to")

    def examples(*lines: str) -> dict:
        return {"formatter_class": argparse.RawDescriptionHelpFormatter,
                "epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines)}

    px = sub.add_parser("phoenix", help="spans of one Arize Phoenix project, through its REST API",
                        description="Import the spans of a Phoenix project (GET /v1/projects/NAME/spans, "
                                    "paged). PHOENIX_API_KEY is sent as a bearer token when set.",
                        **examples("halo import phoenix --url http://127.0.0.1:6006 --project my-agent traces.jsonl",
                                   "halo import phoenix --url http://127.0.0.1:6006 --project my-agent "
                                   "--since 2025-06-01 --follow traces.jsonl"))
    px.add_argument("--url", required=True, help="the Phoenix server, e.g. http://127.0.0.1:6006")
    px.add_argument("--project", required=True, metavar="NAME", help="the Phoenix project name (or id)")
    px.add_argument("--page-size", type=int, default=500, metavar="N", help="spans per request (default 500)")
    common(px)

    lf = sub.add_parser("langfuse", help="Langfuse traces, observations and scores, through its public API",
                        description="Import Langfuse traces (v3: GET /api/public/traces, paged, then each "
                                    "trace with its observations and scores; v4, which has no trace list: "
                                    "GET /api/public/v2/observations and /api/public/v3/scores). Keys from "
                                    "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY.",
                        **examples("LANGFUSE_PUBLIC_KEY=pk-... LANGFUSE_SECRET_KEY=sk-... "
                                   "halo import langfuse --host http://127.0.0.1:3000 traces.jsonl",
                                   "halo import langfuse --since 2025-06-01T00:00:00Z --follow traces.jsonl"
                                   "   (host from $LANGFUSE_HOST)"))
    lf.add_argument("--host", default=None,
                    help="the Langfuse server (default: $LANGFUSE_HOST, else $LANGFUSE_BASE_URL)")
    lf.add_argument("--page-size", type=int, default=50, metavar="N",
                    help="traces (v3) or observations (v4) per request (default 50)")
    common(lf)

    oj = sub.add_parser("otlp-json", help="an OpenTelemetry Collector file exporter's output",
                        description="Import a file of OTLP/JSON export requests, one a line (the "
                                    "Collector's `file` exporter), plain, gzip or zstd. --follow "
                                    "tails a plain file as the Collector appends to it.",
                        **examples("halo import otlp-json /var/lib/otelcol/traces.json traces.jsonl",
                                   "halo import otlp-json traces.json.zst traces.jsonl",
                                   "halo import otlp-json /var/lib/otelcol/traces.json traces.jsonl --follow"))
    oj.add_argument("file", metavar="FILE", help="the Collector's output file")
    common(oj, since=False)


def parse_since(text: str | None) -> datetime | None:
    """--since as an aware UTC datetime; a bad value is a usage error naming it."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {text!r} is not an ISO-8601 time (e.g. 2025-06-01T12:00:00Z)",
                       EXIT_USAGE) from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class _Bar:
    """A rich progress display on stderr, only on a terminal; a count when the total is unknown."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.progress = None
        self.task = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.progress is None:
            if not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress,
                                       SpinnerColumn, TextColumn, TimeRemainingColumn)

            done_column = DownloadColumn() if self.what == "bytes" else MofNCompleteColumn()
            columns = ([TextColumn("importing"), BarColumn(), done_column, TimeRemainingColumn()]
                       if total else [SpinnerColumn(), TextColumn(f"importing: {{task.completed:,}} {self.what}")])
            self.progress = Progress(*columns, transient=True, console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task("import", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _notify(message: str) -> None:
    print(f"halo import: {message}", file=sys.stderr, flush=True)


def _importer(args, target):
    from halo_live.exporter.importers.resume import ImportFailed

    if args.source == "otlp-json":
        from halo_live.exporter.importers.otlp_json import OtlpJsonImport

        return OtlpJsonImport(args.file, target, project_id=args.project_id), "bytes"
    if args.page_size < 1:
        raise CliError(f"--page-size must be at least 1, not {args.page_size}", EXIT_USAGE)
    since = parse_since(args.since)
    if args.source == "phoenix":
        from halo_live.exporter.importers.phoenix import PhoenixImport

        return PhoenixImport(args.url, args.project, target, since=since, page_size=args.page_size,
                             api_key=os.environ.get("PHOENIX_API_KEY"),
                             project_id=args.project_id, notify=_notify), "spans"
    from halo_live.exporter.importers.langfuse import LangfuseImport, host_from_env

    host = args.host or host_from_env()
    public, secret = os.environ.get("LANGFUSE_PUBLIC_KEY"), os.environ.get("LANGFUSE_SECRET_KEY")
    if not host:
        raise CliError("give --host (or set LANGFUSE_HOST)", EXIT_USAGE)
    if not public or not secret:
        raise ImportFailed("set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (the project's API keys)")
    return LangfuseImport(host, public, secret, target, since=since, page_size=args.page_size,
                          project_id=args.project_id, notify=_notify), "traces"


def _source_key(args) -> str:
    if args.source == "otlp-json":
        return f"otlp-json:{os.path.abspath(args.file)}"
    if args.source == "phoenix":
        return f"phoenix:{args.url.rstrip('/')}:{args.project}:{args.since or ''}"
    return f"langfuse:{(args.host or '').rstrip('/')}:{args.since or ''}"


def run(args) -> int:
    from halo_live.exporter.importers.resume import ImportFailed, ImportTarget

    if args.interval is not None and args.interval <= 0:
        raise CliError(f"--interval must be positive, not {args.interval}", EXIT_USAGE)
    target = None
    try:
        target = ImportTarget(args.out, _source_key(args))
        importer, unit = _importer(args, target)
        bar = _Bar(unit)
        stop = threading.Event()
        previous = {}
        if args.follow:
            previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
            print(f"halo import {args.source}: following into {args.out} (Ctrl-C to stop)", flush=True)
        try:
            options = {"follow": args.follow, "stop": stop, "progress": bar}
            if args.interval is not None:
                options["poll_interval"] = args.interval
            importer.run(**options)
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        target.close()
        print(target.stats.summary(target.out), flush=True)
        return 0
    except ImportFailed as exc:
        if target is not None:
            target.close()
            if target.stats.spans:
                print(target.stats.summary(target.out), file=sys.stderr)
        raise CliError(str(exc)) from None
