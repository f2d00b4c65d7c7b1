"""`halo TRACE_PATH -p` run folders on the command line: `--resume RUN`, `--continue [RUN]`.

Every ask creates a run folder (`halo_live.engine.agent.checkpoint`). A
resumed run takes its question, dataset and settings from its folder (the
API key and headers come from this command line or the environment, as they
are never saved); a follow-up starts a new run from a finished run's
conversation and settings, with a fresh turn budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from halo_live.engine.agent.checkpoint import DONE, LAST, STATE_FILE, RunError, RunFolder, runs_dir
from halo_live.engine.agent.config import AgentSettings
from halo_live.engine.cli import EXIT_USAGE, CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-folder flags, in their own group of the ask form."""
    group = parser.add_argument_group("runs (every run is saved; see --runs-dir)")
    group.add_argument("--resume", default=None, metavar="RUN",
                       help="continue a run that stopped (Ctrl-C, a crash, a model outage) from its "
                            "last completed turn; RUN is its id, its folder, or 'last'")
    group.add_argument("--continue", dest="continue_run", nargs="?", const=LAST, default=None,
                       metavar="RUN", help="ask a follow-up (-p) in a finished run's conversation "
                                           "(default: the last run)")
    group.add_argument("--runs-dir", default=None, metavar="DIR",
                       help="where run folders live (default: $HALO_RUNS_DIR or "
                            "~/.local/state/halo-live/runs)")


def wants_saved_run(args: argparse.Namespace) -> bool:
    """True for `--resume` / `--continue`, after giving back a TRACE_PATH that `--continue`
    took for its optional RUN (`halo --continue traces/ -p ...`)."""
    value = args.continue_run
    if (value not in (None, LAST) and args.trace_path is None and os.path.exists(value)
            and not (Path(value) / STATE_FILE).is_file()):
        args.trace_path, args.continue_run = value, LAST
    return bool(args.resume or args.continue_run)


def _load(args: argparse.Namespace, ref: str) -> RunFolder:
    try:
        return RunFolder.load(runs_dir(args.runs_dir), ref)
    except RunError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _saved_settings(folder: RunFolder, fresh: AgentSettings) -> AgentSettings:
    """The run's own settings, with this command line's key, headers and (if given) endpoint."""
    known = {f.name for f in dataclasses.fields(AgentSettings)}
    saved = {k: v for k, v in folder.state.settings.items() if k in known}
    saved.update(api_key=fresh.api_key, headers=fresh.headers)
    if fresh.base_url:
        saved["base_url"] = fresh.base_url
    try:
        return AgentSettings(**saved)
    except (TypeError, ValueError) as exc:
        raise CliError(f"run {folder.run_id} has settings this version cannot use: {exc}") from exc


def open_saved(args: argparse.Namespace, fresh: AgentSettings) -> tuple[RunFolder, AgentSettings]:
    """The run folder to go on with and its settings; fills `args.trace_path/prompt/index_dir`."""
    if args.resume and args.continue_run:
        raise CliError("--resume and --continue do not go together: resume a stopped run, or "
                       "continue a finished one", EXIT_USAGE)
    if args.resume:
        folder = _load(args, args.resume)
        state = folder.state
        if state.status == DONE:
            raise CliError(f"run {folder.run_id} is finished; ask a follow-up with "
                           f"halo --continue {folder.run_id} -p \"...\"", EXIT_USAGE)
        if args.prompt and args.prompt != state.prompt:
            raise CliError("--resume goes on with the run's own question; for a new one use "
                           "--continue after it finishes", EXIT_USAGE)
        args.prompt = state.prompt
    else:
        parent = _load(args, args.continue_run)
        state = parent.state
        if not args.prompt or not args.prompt.strip():
            raise CliError("a follow-up question is required: halo --continue -p \"question\"", EXIT_USAGE)
        try:
            history = parent.follow_up(args.prompt)
        except RunError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
    if args.trace_path is not None and os.path.abspath(args.trace_path) != state.trace_path:
        raise CliError(f"run {state.run_id} is about {state.trace_path}, not {args.trace_path}", EXIT_USAGE)
    args.trace_path = state.trace_path
    args.index_dir = args.index_dir or state.index_dir
    settings = _saved_settings(parent if args.continue_run else folder, fresh)
    if args.continue_run:
        folder = create(args, settings, history=history, parent=parent.run_id)
        folder.state.compacted = dict(parent.state.compacted)
    return folder, settings


def create(args: argparse.Namespace, settings: AgentSettings, *, history=None,
           parent: str | None = None) -> RunFolder | None:
    """A new run folder for this ask; None (with a warning) where none can be written, since
    a question is worth answering even when it cannot be resumed. A follow-up needs one."""
    try:
        return RunFolder.create(runs_dir(args.runs_dir), trace_path=os.path.abspath(args.trace_path),
                                prompt=args.prompt, settings=settings, index_dir=args.index_dir,
                                history=history, parent=parent)
    except (RunError, OSError) as exc:
        if history is not None:
            raise CliError(str(exc)) from exc
        print(f"halo: warning: {exc}; this run cannot be resumed", file=sys.stderr)
        return None
