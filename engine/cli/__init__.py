"""`halo`: the command line's dispatcher, a thin layer over the library.

`halo TRACE_PATH -p "question"` asks the diagnostic agent (the reference's
spelling); the commands answer without an LLM or run the pipeline. Each
command lives in its own module of this package exposing
`add_arguments(parser)` and `run(args) -> int`; its one-line help is in the
table below, so `halo --help` imports no command module and a command imports
only its own. This module dispatches and turns failures into one clear line
and a non-zero exit. `halo_live.cli` adds the demo's command to these.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from halo_live import __version__


class Command(NamedTuple):
    """A `halo` command: the module with `add_arguments(parser)` and `run(args)`, and its help line."""

    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "tool": Command("halo_live.engine.cli.tool",
                    "run one trace tool (overview, query, count, view, search, report, compare) and print "
                    "its JSON result"),
    "report": Command("halo_live.engine.cli.report", "deterministic failure report (errors, tool error "
                      "rates, slow/costly/in-progress traces), no LLM"),
    "index": Command("halo_live.engine.cli.index",
                     "build or update the trace index (once, or --follow to keep it current)"),
    "serve": Command("halo_live.engine.cli.serve",
                     "the OTLP endpoint (gRPC 4317, HTTP 4318) writing canonical JSONL, with a live index"),
    "compare": Command("halo_live.engine.cli.compare",
                       "compare two runs: pass rate and flipped tasks, error signatures, token and latency deltas"),
    "import": Command("halo_live.engine.cli.import_",
                      "import traces from Phoenix, Langfuse or a Collector's OTLP JSON file, once or --follow"),
    "ui": Command("halo_live.engine.cli.ui",
                  "a live web view of the traces (run counters, filtered trace table, span tree, waterfall)"),
    "mcp": Command("halo_live.engine.cli.mcp",
                   "serve the trace tools to coding agents over MCP (stdio, or streamable HTTP with --http)"),
    "watch": Command("halo_live.engine.cli.watch",
                     "a live terminal view of a run: tasks running, stuck and abandoned, errors, pass rate"),
    "annotate": Command("halo_live.engine.cli.annotate",
                        "append a grader's verdicts (JSONL/CSV by trace or task id) to the traces as outcomes"),
}
ASK_MODULE = "halo_live.engine.cli.ask"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEBUG_ENV = "HALO_DEBUG"


class CliError(Exception):
    """An expected failure: printed as one line, exit code attached."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (plus where to look), not the whole usage."""

    def error(self, message: str):  # type: ignore[override]
        if message.startswith("unrecognized arguments") and ".jsonl" in message:
            # The shell expanded an unquoted glob into several paths.
            message += "; for several files quote the glob ('traces/*.jsonl') or give their folder"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def version() -> str:
    from halo_live.indexer import parse  # here: the dispatcher imports no indexer module otherwise

    return f"halo-live {__version__} (span parser: {parse.parser_name()})"


def build_parser(commands: Mapping[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    """The top-level parser: the ask form, with the commands listed in its help."""
    listing = "\n".join(f"  {name:<9} {command.help}" for name, command in commands.items())
    parser = _Parser(
        prog="halo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "halo-live: live traces for improving LLM agent harnesses.\n"
            f"{version()}\n\n"
            "  halo TRACE_PATH -p \"what fails and why?\"   ask the diagnostic agent\n"
            "  halo COMMAND ...                          see the commands below\n\n"
            f"commands:\n{listing}\n\n"
            "Run `halo COMMAND --help` for a command's options. "
            f"Set {DEBUG_ENV}=1 to see tracebacks."
        ),
        epilog=(
            "examples:\n"
            "  halo demo                                  the offline benchmark, watched live\n"
            "  halo report traces/                        what fails, without an LLM\n"
            "  halo traces/ -p \"Which tool fails most often, and why?\"\n"
            "  halo traces/ -p \"...\" --base-url http://127.0.0.1:8000/v1   any OpenAI-compatible endpoint\n"
            "  halo --resume last                         go on with a run that stopped\n"
            "  halo --continue -p \"and why?\"              a follow-up in the last run's conversation"
        ),
    )
    parser.add_argument("--version", action="version", version=version())
    importlib.import_module(ASK_MODULE).add_arguments(parser)
    return parser


def _subcommand_parser(name: str, command: Command, module) -> argparse.ArgumentParser:
    examples = getattr(module, "EXAMPLES", "")
    parser = _Parser(prog=f"halo {name}", description=command.help,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog=f"examples:\n{examples}" if examples else None)
    module.add_arguments(parser)
    return parser


def console(**options):
    """A rich Console for stdout whose closed pipe (`halo report | head`) ends the command
    quietly with exit 0, as for plain prints, instead of rich's own exit 1."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(**options)


def _silence_stdout() -> None:
    # The reader went away: point stdout at /dev/null so the exit-time flush can't fail too.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _check_not_a_typo(argv: list[str], commands: Mapping[str, Command]) -> None:
    """`halo reprot traces/` would be read as asking about a file named `reprot`: when the
    first word is no path but close to a command name, say so."""
    if not argv or argv[0].startswith("-") or os.path.exists(argv[0]):
        return
    import difflib

    close = difflib.get_close_matches(argv[0], list(commands), n=1, cutoff=0.6)
    if close:
        raise CliError(f"unknown command {argv[0]!r}; did you mean `halo {close[0]}`? "
                       f"(commands: {', '.join(commands)})", EXIT_USAGE)


def main(argv: Sequence[str] | None = None, commands: Mapping[str, Command] = COMMANDS) -> int:
    """Run one `halo` command line over `commands`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv == ["--version"]:  # answered before any command module is imported
            print(version())
            return EXIT_OK
        if argv and argv[0] in commands:
            command = commands[argv[0]]
            module = importlib.import_module(command.module)
            args = _subcommand_parser(argv[0], command, module).parse_args(argv[1:])
            code = module.run(args)
        else:
            _check_not_a_typo(argv, commands)
            parser = build_parser(commands)
            args = parser.parse_args(argv)
            args.top_parser = parser
            code = importlib.import_module(ASK_MODULE).run(args)
        return int(code or 0)
    except CliError as exc:
        print(f"halo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("halo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"halo: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"halo: set {DEBUG_ENV}=1 for the traceback", file=sys.stderr)
        return EXIT_FAILURE
