"""`halo compare BEFORE AFTER [--run ID] [--json]`: what a harness change did, task by task and
signature by signature."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli import console as make_console
from halo_live.engine.cli.paths import prepare
from halo_live.engine.compare import CompareError, SeveralRunsError, compare, summarize
from halo_live.engine.render import cut
from halo_live.indexer import DatasetError, IndexStorageError



EXAMPLES = """\
  halo compare halo-demo/baseline halo-demo/fixed          two runs, joined by the task ids of their outcomes
  halo compare before.jsonl after.jsonl --json             for scripts
  halo compare traces.jsonl traces.jsonl --run-before r1 --run-after r2   two runs in one file
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo compare` flags."""
    parser.add_argument("before", metavar="BEFORE", help="trace file or folder of the first run")
    parser.add_argument("after", metavar="AFTER", help="trace file or folder of the second run")
    parser.add_argument("--run", default=None, metavar="ID",
                        help="compare only this run id on both sides (inference.run_id)")
    parser.add_argument("--run-before", default=None, metavar="ID", help="run id to take from BEFORE")
    parser.add_argument("--run-after", default=None, metavar="ID", help="run id to take from AFTER")
    parser.add_argument("--score-before", default=None, metavar="FILE",
                        help="BEFORE's score from this file instead (default: the outcomes in its traces; "
                             "for a run without any, score.json in the folder or FILE.score.json)")
    parser.add_argument("--score-after", default=None, metavar="FILE", help="AFTER's score file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--top", type=int, default=15, metavar="N", help="signatures shown (default: 15)")


def run(args: argparse.Namespace) -> int:
    """Summarize both sides through the index and print the comparison."""
    if args.top < 1:
        raise CliError("--top must be at least 1", EXIT_USAGE)
    run_before = args.run_before or args.run
    run_after = args.run_after or args.run
    # Check, place and catch up each index (a bar on a terminal); a missing path gets
    # summarize()'s own line.
    index_dirs = [prepare(path, None) if Path(path).exists() else None for path in (args.before, args.after)]
    try:
        result = compare(
            summarize(args.before, run_before, index_dirs[0], score_file=args.score_before),
            summarize(args.after, run_after, index_dirs[1], score_file=args.score_after))
    except SeveralRunsError as exc:
        if _same_path(args.before, args.after):
            raise CliError(exc.on_both_sides(run_before, run_after)) from exc
        raise CliError(str(exc)) from exc
    except (CompareError, DatasetError, IndexStorageError) as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot read or index the traces: {exc.strerror or exc}"
                       f"{f' ({exc.filename})' if exc.filename else ''}") from exc
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        render(result, args.top)
    return 0


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def _num(value: Any, pct: bool = False, signed: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{value * 100:+.1f} pp" if signed else f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:+,.1f}" if signed else f"{value:,.1f}"
    return f"{value:+,}" if signed else f"{value:,}"


def _cut(text: str, n: int = 60) -> str:
    return cut(text, n)


def _rate(score: float | None, outcomes: dict[str, Any] | None) -> str:
    """"75.0% (9/12, 95% CI 47%-91%)": a pass rate with its counts and interval."""
    if not outcomes:
        return _num(score, pct=True)
    low, high = outcomes["pass_rate_95ci"]
    return (f"{_num(outcomes['pass_rate'], pct=True)} ({outcomes['passed']}/{outcomes['tasks']}, "
            f"95% CI {low:.0%}-{high:.0%})")


def _tasks(console, tasks: dict[str, Any] | None, top: int) -> None:
    """The runs joined by task: flips each way, the test, and the flipped tasks."""
    if not tasks:
        return
    p2f, f2p = tasks["pass_to_fail"], tasks["fail_to_pass"]
    console.print(f"tasks on both sides: {tasks['joined']} ({tasks['only_before']} only before, "
                  f"{tasks['only_after']} only after); flipped: {len(f2p)} fail -> pass, {len(p2f)} pass -> fail; "
                  f"exact McNemar p = {tasks['mcnemar_p']:.3g}: {tasks['verdict']}", highlight=False)
    flips = [(f, "fail -> pass", "green") for f in f2p] + [(f, "pass -> fail", "red") for f in p2f]
    if flips:  # lines, not a table: a trace id is copied whole, never folded
        console.print("flipped tasks (before trace -> after trace):", highlight=False)
    for flip, what, style in flips[:top]:
        console.print(f"  [{style}]{what}[/]  {flip['task_id']}  {flip['before_trace_id']} -> {flip['after_trace_id']}",
                      soft_wrap=True, highlight=False)
    if len(flips) > top:
        console.print(f"  ... and {len(flips) - top} more flipped tasks (--top, or --json for all)")


def _cell(side: dict[str, Any]) -> str:
    return f"{side['traces']} ({side['share'] * 100:.0f}%) {side['error_spans']} sp"


def render(result: dict[str, Any], top: int = 15, console=None) -> None:
    """Print the comparison as rich tables."""
    from rich.table import Table

    console = console or make_console()
    b, a, d = result["before"], result["after"], result["delta"]
    overview = Table(title="halo compare", title_justify="left")
    for column in ("", "before", "after", "delta"):
        overview.add_column(column, justify="right" if column else "left",
                            overflow="fold")  # a run id is folded, never cut: it is used in --run
    sb, sa = b["score"] or {}, a["score"] or {}
    overview.add_row("run", str(b["run_id"] or "-"), str(a["run_id"] or "-"), "")
    overview.add_row("pass rate" if b.get("outcomes") or a.get("outcomes") else "score",
                     _rate(sb.get("score"), b.get("outcomes")), _rate(sa.get("score"), a.get("outcomes")),
                     _num(d["score"], pct=True, signed=True))
    overview.add_row("traces", _num(b["traces"]), _num(a["traces"]), _num(a["traces"] - b["traces"], signed=True))
    overview.add_row("traces with errors", _num(b["error_trace_share"], pct=True),
                     _num(a["error_trace_share"], pct=True), _num(d["error_trace_share"], pct=True, signed=True))
    overview.add_row("input tokens / trace", _num(b["tokens"]["input_per_trace"]),
                     _num(a["tokens"]["input_per_trace"]), _num(d["input_tokens_per_trace"], signed=True))
    overview.add_row("output tokens / trace", _num(b["tokens"]["output_per_trace"]),
                     _num(a["tokens"]["output_per_trace"]), _num(d["output_tokens_per_trace"], signed=True))
    overview.add_row("median latency (ms)", _num(b["latency_ms"]["median"]), _num(a["latency_ms"]["median"]),
                     _num(d["median_latency_ms"], signed=True))
    overview.add_row("p95 latency (ms)", _num(b["latency_ms"]["p95"]), _num(a["latency_ms"]["p95"]),
                     _num(d["p95_latency_ms"], signed=True))
    console.print(overview)
    _tasks(console, result.get("tasks"), top)

    sigs = Table(title="error signatures (traces hit, share of traces, error spans)", title_justify="left")
    for column, justify in (("span", "left"), ("status message", "left"), ("before", "right"),
                            ("after", "right"), ("change", "left")):
        sigs.add_column(column, justify=justify)
    styles = {"new": "bold red", "vanished": "bold green", "down": "green", "up": "red", "mixed": "yellow",
              "same": ""}
    for s in result["signatures"][:top]:
        said = s["change"]
        if said in ("down", "up", "mixed"):  # say which count moved: traces hit, error spans, or both
            said += f" ({' and '.join('traces' if c == 'traces' else 'spans' for c in s['changed_in'])})"
        sigs.add_row(_cut(s["span_name"], 30), _cut(s["status_message"]),
                     _cell(s["before"]), _cell(s["after"]),
                     f"[{styles[s['change']]}]{said}[/]" if styles[s["change"]] else said)
    if not result["signatures"]:
        sigs.add_row("-", "no error spans on either side", "", "", "")
    console.print(sigs)
    hidden = len(result["signatures"]) - top
    if hidden > 0:
        console.print(f"... and {hidden} more signatures (--top, or --json for all)")
