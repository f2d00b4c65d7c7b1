"""`halo annotate TRACE_PATH GRADES`: a grader's verdicts appended to the traces as outcomes.

A thin layer over `halo_live.engine.annotate`: malformed rows are listed with
their line numbers and nothing is written (exit 1); ids no trace carries are
counted and listed, the rest is written (exit 0).
"""

from __future__ import annotations

import argparse
import json
import sys

from halo_live.engine.annotate import GradesError, plan_outcomes, read_grades, write_outcomes
from halo_live.engine.cli import CliError
from halo_live.engine.cli.paths import prepare
from halo_live.indexer import DatasetError, IndexStorageError, TraceIndex

EXAMPLES = """\
  halo annotate traces/ grades.jsonl         rows like {"task_id": "t07", "passed": false, "label": "wrong answer"}
  halo annotate traces.jsonl grades.csv      a CSV with a header: trace_id or task_id, passed, score, label, explanation
  halo annotate traces/ grades.jsonl --run r2 --dry-run   task ids of one run only; write nothing
"""
SHOWN_UNKNOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo annotate` flags."""
    parser.add_argument("trace_path", metavar="TRACE_PATH", help="a .jsonl file, a folder of .jsonl shards, or a glob")
    parser.add_argument("grades", metavar="GRADES",
                        help="the grader's output: JSONL or CSV with trace_id or task_id, and passed, score, "
                             "label, explanation as available")
    parser.add_argument("--run", default=None, metavar="ID", help="match task ids within this run only")
    parser.add_argument("--name", default=None, metavar="NAME",
                        help="the evaluation's name (gen_ai.evaluation.name; default: task_outcome)")
    parser.add_argument("--dry-run", action="store_true", help="match and count, but write nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: beside the traces)")


def run(args: argparse.Namespace) -> int:
    """Read the grades, match them to traces, append the outcome lines."""
    try:
        grades = read_grades(args.grades)
    except GradesError as exc:
        for number, problem in exc.problems[:50]:
            print(f"halo: {args.grades} line {number}: {problem}", file=sys.stderr)
        raise CliError(f"{len(exc.problems)} malformed row(s) in {args.grades}; nothing written") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.grades}: {getattr(exc, 'strerror', None) or exc}") from exc
    index_dir = prepare(args.trace_path, args.index_dir)
    try:
        with TraceIndex.open(args.trace_path, index_dir) as index:
            plan = plan_outcomes(index, grades, run_id=args.run, name=args.name)
            written = 0 if args.dry_run else write_outcomes(plan)
    except (DatasetError, IndexStorageError) as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot append the outcomes: {exc.strerror or exc}") from exc
    summary = {"rows": plan.rows, "traces_graded": len(plan.traces), "lines_written": written,
               "dry_run": args.dry_run, "unknown_ids": plan.unknown,
               "files": {str(path): len(lines) for path, lines in plan.lines.items()}}
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    verb = "would append" if args.dry_run else "appended"
    print(f"{plan.rows} grade(s): {verb} {plan.count} outcome span(s) to {len(plan.lines)} file(s), "
          f"{len(plan.unknown)} unknown id(s)")
    if plan.unknown:
        shown = ", ".join(plan.unknown[:SHOWN_UNKNOWN])
        more = f" (and {len(plan.unknown) - SHOWN_UNKNOWN} more: --json lists all)" \
            if len(plan.unknown) > SHOWN_UNKNOWN else ""
        print(f"unknown (no trace carries them, not written): {shown}{more}")
    return 0
