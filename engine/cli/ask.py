"""`halo TRACE_PATH -p "question"`: ask the diagnostic agent.

The reference's spelling and flags (`--model/-m`, `--synthesis-model`,
`--compaction-model`, `--max-depth`, `--max-turns`, `--max-parallel`,
`--base-url`, `--api-key`, `-H/--header`, `--temperature`,
`--max-output-tokens`, `--reasoning-effort`, `--parallel-tool-calls`,
`--refusal-retries`, `--telemetry`), plus `--api`, `--max-retries`,
`--compaction-threshold`, `--no-stream`, `--quiet`, `--json`, `--index-dir`,
`--repo-path` (the reference's, without its ripgrep requirement),
`--dataset-context`, `--no-run-code`, and the run folders' `--resume`,
`--continue` and `--runs-dir` (`halo_live.engine.cli.runs`). The final
answer goes to stdout; the steps to stderr. Every expected failure (missing
file, no key, unreachable endpoint, rejected key, bad flag) is one line and a
non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict, replace
from urllib.parse import urlsplit

from halo_live.engine.agent.config import (
    API_MODES,
    DEFAULT_COMPACTION_THRESHOLD_CHARS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_PARALLEL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TURNS,
    DEFAULT_MODEL,
    REASONING_EFFORTS,
)
from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli import runs

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
LOCAL_PLACEHOLDER_KEY = "no-key-needed"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def is_local(base_url: str | None) -> bool:
    """True for an endpoint on this machine (loopback), where no API key is needed."""
    if not base_url:
        return False
    try:
        host = (urlsplit(base_url).hostname or "").lower()
    except ValueError:
        return False
    return host in _LOCAL_HOSTS or host.startswith("127.") or host.endswith(".localhost")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be within 0..2, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ask form's arguments, on the top-level `halo` parser."""
    parser.add_argument("trace_path", nargs="?", metavar="TRACE_PATH",
                        help="a .jsonl trace file, a folder of .jsonl shards, or a glob")
    parser.add_argument("--prompt", "-p", default=None, help="the question for the agent")
    group = parser.add_argument_group("model")
    group.add_argument("--model", "-m", default=DEFAULT_MODEL,
                       help=f"model of the root agent and subagents (default: {DEFAULT_MODEL})")
    group.add_argument("--synthesis-model", default=None,
                       help="model for synthesize_traces (default: --model; a small cheap one is fine)")
    group.add_argument("--compaction-model", default=None,
                       help="model that summarizes old tool results (default: --model)")
    group.add_argument("--temperature", type=_temperature, default=None,
                       help="sampling temperature, 0..2 (default: the provider's)")
    group.add_argument("--max-output-tokens", type=_positive, default=None,
                       help="maximum output tokens per model call")
    group.add_argument("--reasoning-effort", choices=REASONING_EFFORTS, default=None,
                       help="reasoning effort of the agents' model (default: the family's maximum "
                            "for known reasoning models, else not sent)")
    group.add_argument("--parallel-tool-calls", action=argparse.BooleanOptionalAction, default=True,
                       help="let the model issue several tool calls per turn (default: on)")
    group.add_argument("--refusal-retries", type=_non_negative, default=0,
                       help="ask again this many times when the model refuses (default: 0)")
    group.add_argument("--api", choices=API_MODES, default="auto",
                       help="Responses or Chat Completions; auto = Responses on api.openai.com, "
                            "Chat Completions on other endpoints (default: auto)")
    group.add_argument("--no-stream", dest="stream", action="store_false",
                       help="plain (non-streamed) model requests")
    endpoint = parser.add_argument_group("endpoint")
    endpoint.add_argument("--base-url", default=None,
                          help=f"OpenAI-compatible API base URL (default: ${BASE_URL_ENV} or OpenAI)")
    endpoint.add_argument("--api-key", default=None, help=f"API key (default: ${API_KEY_ENV})")
    endpoint.add_argument("--header", "-H", dest="headers", action="append", default=[],
                          metavar="'NAME: VALUE'", help="extra HTTP header; repeatable")
    endpoint.add_argument("--max-retries", type=_non_negative, default=DEFAULT_MAX_RETRIES,
                          help=f"retries of a failed model call on 429/5xx/network errors, with "
                               f"backoff (default: {DEFAULT_MAX_RETRIES}; 0 disables all retries)")
    code = parser.add_argument_group("code")
    code.add_argument("--repo-path", default=None, metavar="DIR",
                      help="source checkout of the harness that produced the traces: gives the "
                           "agent read-only code tools (view_repo_tree, glob_files, grep_files, "
                           "read_file) to cite path:line, and, in a git work tree, git tools "
                           "(git_log, git_show, git_diff, git_blame, git_read_file)")
    data = parser.add_argument_group("dataset")
    data.add_argument("--dataset-context", default=None, metavar="TEXT|@FILE",
                      help="what the dataset's files encode (the harness, the task, what a span "
                           "means), in your words; the agent's prompt carries it. @FILE reads a file")
    code.add_argument("--no-run-code", dest="run_code", action="store_false",
                      help="do not offer the agent run_code (Python in a sandbox over the dataset)")
    budget = parser.add_argument_group("budget")
    budget.add_argument("--max-depth", type=_non_negative, default=DEFAULT_MAX_DEPTH,
                        help=f"how deep subagents may nest; 0 = none (default: {DEFAULT_MAX_DEPTH})")
    budget.add_argument("--max-turns", type=_positive, default=DEFAULT_MAX_TURNS,
                        help=f"model turns per agent (default: {DEFAULT_MAX_TURNS})")
    budget.add_argument("--max-parallel", type=_positive, default=DEFAULT_MAX_PARALLEL,
                        help=f"subagents running at once, per depth (default: {DEFAULT_MAX_PARALLEL})")
    budget.add_argument("--compaction-threshold", type=_positive,
                        default=DEFAULT_COMPACTION_THRESHOLD_CHARS, metavar="CHARS",
                        help="summarize old tool results once the model input passes this many "
                             f"characters (default: {DEFAULT_COMPACTION_THRESHOLD_CHARS})")
    out = parser.add_argument_group("output")
    out.add_argument("--telemetry", nargs="?", const="-", default=None, metavar="PATH|URL",
                     help="write halo's own run (model calls, tool calls, subagents) as canonical "
                          "JSONL to PATH (default: $HALO_TELEMETRY_PATH or "
                          "./halo-telemetry-RUN_ID.jsonl), or send it to an OTLP/HTTP endpoint "
                          "(http://127.0.0.1:4318, e.g. halo serve) when the run ends")
    out.add_argument("--quiet", "-q", action="store_true", help="print only the final answer")
    out.add_argument("--json", dest="as_json", action="store_true",
                     help="print {answer, salvaged, stats, telemetry_path} as JSON instead")
    out.add_argument("--index-dir", default=None, metavar="DIR",
                     help="where the index lives (default: beside the traces)")
    runs.add_arguments(parser)


def parse_headers(values: list[str]) -> dict[str, str]:
    """`["Name: Value", ...]` -> dict; a malformed one is a usage error."""
    headers: dict[str, str] = {}
    for raw in values or []:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise CliError(f"bad header {raw!r}: expected 'NAME: VALUE'", EXIT_USAGE)
        headers[name.strip()] = value.strip()
    return headers


DATASET_CONTEXT_MAX_CHARS = 20_000


def read_dataset_context(value: str | None) -> str | None:
    """`--dataset-context` as text: the value itself, or the file an `@` names."""
    if value is None:
        return None
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read --dataset-context file {path!r}: "
                           f"{getattr(exc, 'strerror', None) or exc}", EXIT_USAGE) from exc
    if not value.strip():
        raise CliError("--dataset-context is empty", EXIT_USAGE)
    if len(value) > DATASET_CONTEXT_MAX_CHARS:
        raise CliError(f"--dataset-context is {len(value)} chars; keep it under "
                       f"{DATASET_CONTEXT_MAX_CHARS} (it goes into every agent's prompt)", EXIT_USAGE)
    return value.strip()


def settings_from_args(args: argparse.Namespace):
    """AgentSettings from parsed flags (the key is resolved by the caller)."""
    from halo_live.engine.agent.config import AgentSettings

    try:
        return AgentSettings(
            model=args.model, synthesis_model=args.synthesis_model,
            compaction_model=args.compaction_model, max_depth=args.max_depth,
            max_turns=args.max_turns, max_parallel=args.max_parallel,
            temperature=args.temperature, max_output_tokens=args.max_output_tokens,
            reasoning_effort=args.reasoning_effort, parallel_tool_calls=args.parallel_tool_calls,
            refusal_retries=args.refusal_retries, api=args.api,
            base_url=args.base_url or os.environ.get(BASE_URL_ENV) or None,
            api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
            headers=parse_headers(args.headers), max_retries=args.max_retries,
            compaction_threshold_chars=args.compaction_threshold, stream=args.stream,
            repo_path=args.repo_path, run_code=args.run_code,
            dataset_context=read_dataset_context(args.dataset_context),
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _check(args: argparse.Namespace) -> None:
    from halo_live.engine.cli.paths import check_trace_path

    if not args.prompt or not args.prompt.strip():
        raise CliError("a question is required: halo TRACE_PATH -p \"question\"", EXIT_USAGE)
    check_trace_path(args.trace_path, note_empty=False)  # an empty dataset is refused in words later
    if args.repo_path is not None:
        from halo_live.engine.repo.code import CodeRepo

        try:
            CodeRepo.open(args.repo_path)
        except ValueError as exc:
            raise CliError(f"--repo-path: {exc}", EXIT_USAGE) from exc


def _stopped(folder, exc: BaseException, settings, resume: str) -> None:
    """Record why the run stopped (its last checkpoint stays) and word the failure as one
    line that says how to resume; re-raised by the caller unless this raises a CliError."""
    from halo_live.engine.agent.errors import describe_failure

    if isinstance(exc, KeyboardInterrupt):
        if folder is not None:
            folder.fail("interrupted")
            print(f"halo: run {folder.run_id} interrupted{resume}", file=sys.stderr)
        return
    if isinstance(exc, CliError):
        message = str(exc)
    elif isinstance(exc, Exception):
        message = describe_failure(exc, settings)
    else:
        return
    if folder is not None:
        folder.fail(message or f"{type(exc).__name__}: {exc}")
    if message is not None and not isinstance(exc, CliError):
        raise CliError(message + resume) from exc


def run(args: argparse.Namespace) -> int:
    """`halo TRACE_PATH -p QUESTION`; `halo` alone prints the help."""
    if (args.trace_path is None and args.telemetry not in (None, "-") and not args.resume
            and not args.continue_run and not args.telemetry.lower().startswith(("http://", "https://"))):
        # `halo --telemetry T -p Q`: the optional PATH swallowed TRACE_PATH (the reference's
        # --telemetry takes no value); give it back.
        args.trace_path, args.telemetry = args.telemetry, "-"
    saved = runs.wants_saved_run(args)
    if args.trace_path is None and not saved:
        if args.prompt:
            raise CliError("TRACE_PATH is required: halo TRACE_PATH -p \"question\"", EXIT_USAGE)
        args.top_parser.print_help()
        return 0
    settings = settings_from_args(args)
    folder = None
    if saved:
        folder, settings = runs.open_saved(args, settings)
    _check(args)
    if settings.base_url and urlsplit(settings.base_url).scheme not in ("http", "https"):
        raise CliError(f"the base URL must start with http:// or https://, not {settings.base_url!r} "
                       "(e.g. http://127.0.0.1:8000/v1)", EXIT_USAGE)
    if not settings.api_key and is_local(settings.base_url):
        # Local servers (vLLM, Ollama, a test stub) take no key, but the client wants one.
        settings = replace(settings, api_key=LOCAL_PLACEHOLDER_KEY)
    if not settings.api_key:
        raise CliError(
            f"no API key: set {API_KEY_ENV} or pass --api-key (a local --base-url needs none); "
            "`halo tool` and `halo report` answer without one"
        )
    from halo_live.engine.cli.paths import prepare

    args.index_dir = prepare(args.trace_path, args.index_dir, note_empty=False)
    # Saved before the first model call; a run killed outright is `halo --resume last`.
    folder = folder or runs.create(args, settings)
    from halo_live.engine.agent.ask import ask
    from halo_live.engine.agent.display import StepPrinter

    resume = f"; resume it with: halo --resume {folder.run_id}" if folder is not None else ""
    try:
        result = asyncio.run(ask(
            args.trace_path, args.prompt, settings, printer=StepPrinter(quiet=args.quiet),
            telemetry_path=args.telemetry, index_dir=args.index_dir, run=folder,
        ))
    except BaseException as exc:
        _stopped(folder, exc, settings, resume)
        raise
    if args.as_json:
        print(json.dumps({
            "answer": result.answer, "salvaged": result.salvaged, "stats": asdict(result.stats),
            "telemetry_path": str(result.telemetry_path) if result.telemetry_path else None,
            "run_id": folder.run_id if folder is not None else None,
        }, ensure_ascii=False))
        return 0
    print(result.answer or "(the agent gave no answer)")
    if result.telemetry_path is not None and not args.quiet:
        done = "sent to" if isinstance(result.telemetry_path, str) else "written to"
        print(f"halo: telemetry {done} {result.telemetry_path}", file=sys.stderr)
    return 0
