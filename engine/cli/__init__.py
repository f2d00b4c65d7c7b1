"""`halo`: the command line's dispatcher, a thin layer over the library.

`halo TRACE_PATH -p "question"` asks the diagnostic agent (the reference's
spelling); the commands answer without an LLM or run the pipeline. Each
command lives in its own module of this package exposing `HELP`,
`add_arguments(parser)` and `run(args) -> int`; this module only dispatches,
imports nothing but the one command it runs, and turns failures into one clear
line and a non-zero exit. `halo_live.cli` adds the demo's command to these.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence

# name -> module; each module defines HELP, add_arguments(parser), run(args) -> int
COMMANDS: dict[str, str] = {
    "tool": "halo_live.engine.cli.tool",
    "report": "halo_live.engine.cli.report",
    "index": "halo_live.engine.cli.index",
    "serve": "halo_live.engine.cli.serve",
    "compare": "halo_live.engine.cli.compare",
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
    from halo_live import __version__

    return f"halo-live {__version__}"


def build_parser(commands: Mapping[str, str] = COMMANDS) -> argparse.ArgumentParser:
    """The top-level parser: the ask form, with the commands listed in its help."""
    listing = "\n".join(f"  {name:<9} {importlib.import_module(module).HELP}"
                        for name, module in commands.items())
    parser = _Parser(
        prog="halo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "halo-live: live traces for improving LLM agent harnesses.\n\n"
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
            "  halo traces/ -p \"...\" --base-url http://127.0.0.1:8000/v1   any OpenAI-compatible endpoint"
        ),
    )
    parser.add_argument("--version", action="version", version=version())
    importlib.import_module(ASK_MODULE).add_arguments(parser)
    return parser


def _subcommand_parser(name: str, module) -> argparse.ArgumentParser:
    examples = getattr(module, "EXAMPLES", "")
    parser = _Parser(prog=f"halo {name}", description=module.HELP,
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


def _check_not_a_typo(argv: list[str], commands: Mapping[str, str]) -> None:
    """`halo reprot traces/` would be read as asking about a file named `reprot`: when the
    first word is no path but close to a command name, say so."""
    if not argv or argv[0].startswith("-") or os.path.exists(argv[0]):
        return
    import difflib

    close = difflib.get_close_matches(argv[0], list(commands), n=1, cutoff=0.6)
    if close:
        raise CliError(f"unknown command {argv[0]!r}; did you mean `halo {close[0]}`? "
                       f"(commands: {', '.join(commands)})", EXIT_USAGE)


def main(argv: Sequence[str] | None = None, commands: Mapping[str, str] = COMMANDS) -> int:
    """Run one `halo` command line over `commands` (name -> module); the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv == ["--version"]:  # answered before any command module is imported
            print(version())
            return EXIT_OK
        if argv and argv[0] in commands:
            module = importlib.import_module(commands[argv[0]])
            args = _subcommand_parser(argv[0], module).parse_args(argv[1:])
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
