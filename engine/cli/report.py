"""`halo report TRACE_PATH [--json] [--top N]`: the failure report, no LLM.

Tables (rich) for people, `--json` for machines; both from
`halo_live.engine.report.build_report`, so they always agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli import console as make_console
from halo_live.engine.cli.paths import open_store
from halo_live.engine.render import cut
from halo_live.engine.report import build_report



EXAMPLES = """\
  halo report traces/                  tables: overview, error signatures, tool error rates, slowest
  halo report traces.jsonl --top 20    longer rankings
  halo report traces/ --json | jq '.error_signatures[0]'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo report` flags."""
    parser.add_argument("trace_path", metavar="TRACE_PATH",
                        help="a .jsonl file, a folder of .jsonl shards, or a glob")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="rows per ranking (default: 10)")
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: beside the traces)")


def run(args: argparse.Namespace) -> int:
    """Build the report and print it."""
    if args.top < 1:
        raise CliError("--top must be at least 1", EXIT_USAGE)
    store = open_store(args.trace_path, args.index_dir)
    try:
        report = build_report(store, args.top)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        render(report, args.trace_path)
    return 0


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _outcomes_line(o: dict[str, Any]) -> str:
    known = o["passed"] + o["failed"]
    rate = f"pass rate {_pct(o['pass_rate'])}" if known else "no pass/fail known"
    ci = o.get("pass_rate_95ci")
    ci_text = f" (95% CI {_pct(ci[0])}-{_pct(ci[1])})" if ci else ""
    return (f"{rate}{ci_text}: {o['passed']:,} passed, {o['failed']:,} failed, {o['unknown']:,} without "
            f"an outcome; {o['silent_failure_count']:,} silent failure(s) (failed, no error span)")


def _silent(console, silent: dict[str, Any] | None) -> None:
    """The silent failures: failed tasks whose traces show no error, and what to read."""
    from rich.markup import escape
    from rich.table import Table

    if not silent or not silent["count"]:
        return
    table = Table(title=f"Silent failures: {silent['count']:,} failed task(s) without an error span "
                        f"(first {len(silent['examples'])})", title_justify="left")
    for col in ("trace", "task / verdict", "last tool calls, final output"):
        table.add_column(col, **_ID_COLUMN if col == "trace" else {})
    for ex in silent["examples"]:
        verdict = " ".join(str(x) for x in (ex["task_id"], ex["label"]) if x) or "-"
        if ex.get("explanation"):
            verdict += f"\n[dim]{escape(ex['explanation'])}[/]"
        calls = [f"{escape(c['tool'])}({escape(_cut(c['input'], 50))}) -> {escape(_cut(c['output'], 60))}"
                 for c in ex["last_tool_calls"]]
        if ex["final_output"]:
            calls.append(f"[bold]final:[/] {escape(_cut(ex['final_output'], 120))}")
        table.add_row(ex["trace_id"], escape(verdict) if not ex.get("explanation") else verdict,
                      "\n".join(calls) or "-")
    console.print(table)


# A trace id is what the user copies into `halo tool view_trace`: never cut it short.
_ID_COLUMN = {"no_wrap": True, "min_width": 32}


def _cut(text: str, n: int = 80) -> str:
    return cut(text, n)


def render(report: dict[str, Any], title: str) -> None:
    """Print the report as rich tables."""
    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    ov = report["overview"]
    console.rule(f"[bold]halo report[/bold] {title}")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows = [("outcomes", _outcomes_line(report.get("outcomes")))] if report.get("outcomes") else []
    rows += [
        ("traces", f"{ov['total_traces']:,} ({ov['error_trace_count']:,} with errors, "
                   f"{ov['in_progress_trace_count']:,} in progress)"),
        ("spans", f"{ov['total_spans']:,} ({ov['otel_error_span_count']:,} errors, "
                  f"{ov['tool_error_span_count']:,} tool errors)"),
        ("time", f"{ov['earliest_start_time'] or '-'} .. {ov['latest_end_time'] or '-'}"),
        ("tokens", f"{ov['total_input_tokens']:,} in / {ov['total_output_tokens']:,} out"),
        ("services", ", ".join(ov["service_names"]) or "-"),
        ("models", ", ".join(ov["model_names"]) or "-"),
        ("agents", ", ".join(ov["agent_names"]) or "-"),
        ("bytes", f"{ov['raw_jsonl_bytes']:,}"),
        ("last span end", ov["latest_end_time"] or "-"),
        ("indexed", f"{ov['spans_indexed']:,} spans, last at {ov['last_span_arrival'] or '-'}"),
    ]
    skipped = []
    if ov["bad_lines"]:
        skipped.append(f"{ov['bad_lines']:,} line(s) that are not JSON or not a span, skipped")
    if ov["index_lag_bytes"]:
        skipped.append(f"{ov['index_lag_bytes']:,} bytes of a partial last line, read once it ends")
    if skipped:
        rows.append(("not read", "; ".join(skipped)))
    for key, value in rows:
        facts.add_row(key, value)
    console.print(facts)

    with_outcomes = bool(report.get("outcomes")) and any("lift" in s for s in report["error_signatures"])
    title_text = ("Error signatures, by the failures they explain (traces hit, failed, failure rate "
                  "with / without)" if with_outcomes else "Error signatures (traces hit, error spans)")
    table = Table(title=title_text, title_justify="left")
    columns = [("traces", "right")]
    columns += [("failed", "right"), ("with / without", "right")] if with_outcomes else [("spans", "right")]
    for col, just in columns + [("span: status message / example cause", "left"), ("example trace", "left")]:
        table.add_column(col, justify=just, **_ID_COLUMN if col == "example trace" else {})
    for sig in report["error_signatures"]:
        what = f"[bold]{escape(_cut(sig['span_name'], 40))}[/]: {escape(_cut(sig['status_message']))}"
        cause = sig.get("example_cause") or ""
        if cause and cause != _cut(sig["status_message"], len(cause)):
            what += f"\n  [dim]cause:[/] {escape(cause)}"
        counts = [str(sig["trace_count"])]
        if with_outcomes:
            counts += [str(sig["failed_traces"]),
                       f"{_pct(sig['failure_rate_with'])} / {_pct(sig['failure_rate_without'])}"]
        else:
            counts.append(str(sig["error_span_count"]))
        table.add_row(*counts, what, sig["example_trace_ids"][0] if sig["example_trace_ids"] else "")
    console.print(table if report["error_signatures"] else "[green]No ERROR spans.[/green]")
    _silent(console, report.get("silent_failures"))

    table = Table(title="Tool error rates", title_justify="left")
    for col, just in (("tool", "left"), ("calls", "right"), ("errors", "right"), ("rate", "right")):
        table.add_column(col, justify=just)
    for t in report["tool_error_rates"]:
        table.add_row(t["tool"], str(t["calls"]), str(t["error_spans"]), f"{t['error_rate']:.1%}")
    console.print(table if report["tool_error_rates"] else "No tool calls.")

    for key, title_text, empty in (
        ("slowest_traces", "Slowest traces", "No timed traces."),
        ("token_hungry_traces", "Most token-hungry traces", "No token counts."),
        ("in_progress_traces", "Traces in progress", "[green]No trace in progress.[/green]"),
    ):
        if not report[key]:
            console.print(empty)
            continue
        if key == "in_progress_traces" and ov["in_progress_trace_count"] > len(report[key]):
            title_text += f" (first {len(report[key])} of {ov['in_progress_trace_count']:,})"
        table = Table(title=title_text, title_justify="left")
        for col, just in (("trace", "left"), ("ms", "right"), ("spans", "right"),
                          ("tokens", "right"), ("errors", "center"), ("agents", "left")):
            table.add_column(col, justify=just, **_ID_COLUMN if col == "trace" else {})
        for r in report[key]:
            duration = f"{r['duration_ms']:,.0f}" if r["duration_ms"] is not None else "-"
            table.add_row(r["trace_id"], duration, str(r["span_count"]), f"{r['total_tokens']:,}",
                          "yes" if r["has_errors"] else "", _cut(", ".join(r["agent_names"]), 40))
        console.print(table)
