"""`halo tool NAME TRACE_PATH --args JSON`: run one trace tool, print its JSON.

What it prints is exactly what the diagnostic agent reads for the same call,
so scripts and coding agents can query traces without an LLM. A bad tool
name or bad arguments exit 2, a missing dataset or an unknown id exit 1, each
with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from halo_live.engine import lite
from halo_live.engine.budget import DEFAULT_BUDGET_CHARS, check_budget
from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli.paths import add_stuck_after, open_index, open_store
from halo_live.engine.filtering import ToolError

# The tool registry imports pydantic (~80 ms): a lite tool (`count_traces`) with plain arguments
# never needs it, so `halo tool` imports the registry only for the other calls and for --list.


EXAMPLES = """\
  halo tool --list                                   the tools, one line each
  halo tool --list --schema                          their arguments, as JSON schema
  halo tool get_dataset_overview traces/             totals, error signatures, sample trace ids
  halo tool count_traces traces/ --args '{"filters": {"has_errors": true}}'
  halo tool query_traces traces/ --args '{"limit": 5, "filters": {"agent_names": ["helper"]}}'
  halo tool search_trace traces/ --args '{"trace_id": "ID", "regex_pattern": "Traceback"}'
  halo tool view_trace traces/ --args @args.json --indent 2
  halo tool run_code traces/ --allow-code --args '{"code": "len(trace_rows())"}'
  halo tool run_code traces/ --allow-code --args @analysis.json   Python in a sandbox
  halo tool view_trace traces/ --args '{"trace_id": "ID", "offset": 40}' --budget 40000   as `halo mcp` answers
  halo tool query_traces traces/ --args '{"filters": {"state": "stuck"}}' --stuck-after 120
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo tool` flags."""
    parser.add_argument("name", nargs="?", metavar="NAME", help="tool name (see --list)")
    parser.add_argument("trace_path", nargs="?", metavar="TRACE_PATH",
                        help="a .jsonl file, a folder of .jsonl shards, or a glob")
    parser.add_argument("--args", dest="tool_args", default="{}", metavar="JSON",
                        help="tool arguments as a JSON object, or @file.json (default: {})")
    parser.add_argument("--index-dir", default=None, metavar="DIR",
                        help="where the index lives (default: beside the traces)")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET_CHARS, metavar="CHARS",
                        help="largest answer, in characters of compact JSON; a bigger one is cut and "
                             f"pages with next_offset (default {DEFAULT_BUDGET_CHARS:,}; `halo mcp` uses "
                             "40,000)")
    parser.add_argument("--indent", type=int, default=None, metavar="N",
                        help="pretty-print the JSON with N spaces (default: one line)")
    parser.add_argument("--allow-code", action="store_true",
                        help="allow run_code, which runs the given Python in a sandbox (off by default)")
    add_stuck_after(parser)
    parser.add_argument("--list", action="store_true",
                        help="list the tools and their arguments ([optional]) and exit")
    parser.add_argument("--schema", action="store_true",
                        help="with --list: print each tool's argument JSON schema")


def _read_args(text: str) -> str:
    if not text.startswith("@"):
        return text
    path = Path(text[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read --args file {str(path)!r}: {exc.strerror or exc}") from exc


def _list(args: argparse.Namespace) -> int:
    from halo_live.engine.tools import TOOLS

    if args.schema:
        schemas = {name: spec.json_schema() for name, spec in TOOLS.items()}
        print(json.dumps(schemas, indent=args.indent if args.indent is not None else 2))
        return 0
    width = max(len(name) for name in TOOLS)
    for name, spec in TOOLS.items():
        first = spec.description.split(". ")[0].rstrip(".")
        gate = " (needs --allow-code)" if spec.needs_permission else ""
        print(f"{name:<{width}}  {first}{gate}. Arguments: {_arguments(spec.json_schema())}")
    return 0


def _arguments(schema: dict) -> str:
    """`trace_id, [max_matches]`: the argument names, optional ones in brackets."""
    required = set(schema.get("required") or ())
    names = [name if name in required else f"[{name}]" for name in schema.get("properties") or {}]
    return ", ".join(names) or "none"


def run(args: argparse.Namespace) -> int:
    """Run the tool and print its result."""
    if args.indent is not None and args.indent < 0:
        raise CliError(f"--indent must be >= 0, not {args.indent}", EXIT_USAGE)
    try:
        check_budget(args.budget)
    except ValueError as exc:
        raise CliError(f"--budget: {exc}", EXIT_USAGE) from None
    if args.list:
        return _list(args)
    if not args.name or not args.trace_path:
        raise CliError("usage: halo tool NAME TRACE_PATH --args JSON (or halo tool --list)", EXIT_USAGE)
    text = None
    if args.name in lite.RUNNERS:  # known, and needs no permission: reading the arguments first is safe
        text = _read_args(args.tool_args)
        arguments = lite.parse_arguments(args.name, text)
        if arguments is not None:
            index = open_index(args.trace_path, args.index_dir)
            try:
                return _print(lite.run(index, args.name, arguments, args.budget), args.indent)
            except ToolError as exc:
                raise CliError(str(exc)) from exc
            finally:
                index.close()
    return _run_registered(args, text)


def _run_registered(args: argparse.Namespace, text: str | None) -> int:
    """A call through the tool registry: pydantic validates the arguments and shapes the answer."""
    from halo_live.engine.tools import TOOLS, execute, parse_arguments

    spec = TOOLS.get(args.name)
    if spec is None:
        raise CliError(f"unknown tool {args.name!r}; tools: {', '.join(TOOLS)}", EXIT_USAGE)
    if spec.needs_permission and not args.allow_code:
        raise CliError(f"{spec.name} runs the given code (in a sandbox); pass --allow-code to allow it",
                       EXIT_USAGE)
    try:
        parsed = parse_arguments(spec, _read_args(args.tool_args) if text is None else text)
    except ToolError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    store = open_store(args.trace_path, args.index_dir, stuck_after=args.stuck_after)
    try:
        result = execute(store, spec, parsed, args.budget)
    except ToolError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    return _print(result, args.indent)


def _print(answer: dict, indent: int | None) -> int:
    sys.stdout.write(json.dumps(answer, indent=indent, ensure_ascii=False) + "\n")
    return 0
