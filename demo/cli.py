"""`halo demo`: run the offline benchmark and watch the live index while it runs.

The benchmark (`halo_live.demo.benchmark`) runs a codebase-helper agent on the OpenAI
Agents SDK in parallel worker processes against a bundled offline model; each
worker writes its own trace shard, each task's outcome in its trace. This command
follows those shards as they grow and shows them in `halo watch`'s view
(tasks done and the ETA, the pass rate so far, tasks running, stuck or
abandoned, traces with errors, the top error signatures by the failures they
explain), then
prints the failure report and the next step of the loop. At the end the
diagnostic agent answers what fails and why: with OPENAI_API_KEY a real model,
without one an offline stand-in (`halo_live.demo.diagnostic_policy`, a deterministic
policy, not an LLM) that drives the same agent and trace tools.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from halo_live.engine.cli import EXIT_USAGE, CliError
from halo_live.engine.cli import console as make_console


DEFAULT_ROOT = "halo-demo"
ASK_QUESTION = "What are the top error signatures, what causes each, and what harness change would fix it?"
REFRESH_S = 1.0  # the live view redraws about once a second, as `halo watch` does

EXAMPLES = """\
  halo demo                         the baseline harness, 36 tasks, 4 workers, offline model
  halo demo --fixed                 the same with the harness fixes; then it prints the compare command
  halo demo --fix limits --tasks 12 one fix, fewer tasks, into halo-demo/limits
  halo demo --otlp                  workers send OTLP to a `halo serve` instead of writing shards
  halo demo --no-live > log.txt     progress lines instead of the live view
  halo demo --no-ask                skip the diagnosis at the end (offline stand-in without a key)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`halo demo` flags."""
    parser.add_argument("--out", default=None, metavar="DIR",
                        help=f"output folder (default: {DEFAULT_ROOT}/baseline, or {DEFAULT_ROOT}/fixed with --fixed)")
    parser.add_argument("--workers", type=int, default=4, help="parallel worker processes (default: 4)")
    parser.add_argument("--tasks", type=int, default=None, metavar="N", help="run only the first N tasks")
    parser.add_argument("--fixed", action="store_true",
                        help="run the harness with its fixes (limits stated, recovery instructions)")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME",
                        choices=["limits", "recovery", "describe-limits"],
                        help="apply one fix (repeatable): limits (state read_file's limit in the instructions), "
                             "recovery (say how to recover from a missing path), describe-limits (state it "
                             "in the tool description)")
    parser.add_argument("--read-limit", type=int, default=None, metavar="N",
                        help="the most lines read_file accepts (default: 50)")
    parser.add_argument("--max-turns", type=int, default=None, metavar="N", help="the agent's turn budget (default: 8)")
    parser.add_argument("--api", choices=["responses", "chat"], default="responses",
                        help="the model API the agent uses (default: responses)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the offline model (default: 0)")
    parser.add_argument("--run-id", default=None, metavar="ID", help="run id tagged on every span")
    parser.add_argument("--otlp", action="store_true",
                        help="send the workers' spans over OTLP (OTel GenAI conventions) to a `halo serve` "
                             "it starts, instead of setup_tracing() shards")
    parser.add_argument("--online", action="store_true",
                        help="use a real model through OPENAI_API_KEY instead of the offline one")
    parser.add_argument("--model", default=None,
                        help="the agent's model with --online (default: $HALO_DEMO_MODEL, else gpt-4.1-mini)")
    parser.add_argument("--latency", type=float, default=1.0, metavar="X",
                        help="scale the offline model's think time (default: 1; 0: as fast as possible)")
    parser.add_argument("--no-live", action="store_true", help="print progress lines instead of a live view")
    parser.add_argument("--ask", nargs="?", const=ASK_QUESTION, default=None, metavar="QUESTION",
                        help="at the end, ask the diagnostic agent QUESTION (default: what fails and why; "
                             "a real model with OPENAI_API_KEY, else the offline stand-in model)")
    parser.add_argument("--no-ask", action="store_true", help="don't ask the diagnostic agent at the end")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a previous run in the output folder (default: keep it, renamed "
                             "to FOLDER-<time of that run>)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark with a live view, then report."""
    from halo_live.demo.benchmark import BenchmarkConfig, BenchmarkRun
    from halo_live.demo.openai_agents_sdk.agent import settings_from

    if args.workers < 1:
        raise CliError("--workers must be at least 1", EXIT_USAGE)
    if args.latency < 0:
        raise CliError("--latency must be >= 0", EXIT_USAGE)
    preset = "fixed" if args.fixed else "baseline"
    label = _label(args)
    out = Path(args.out or os.path.join(DEFAULT_ROOT, label))
    try:
        settings = settings_from(preset, args.fix, api=args.api, read_limit=args.read_limit,
                                 max_turns=args.max_turns)
        config = BenchmarkConfig(out=out, workers=args.workers, tasks=args.tasks, settings=settings,
                                 seed=args.seed, run_id=args.run_id, online=args.online,
                                 model=args.model, latency=args.latency,
                                 transport="otlp" if args.otlp else "shards")
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    _check_out(out)
    console = make_console()
    kept = _keep_previous(out, overwrite=args.overwrite)
    if kept is not None:
        console.print(f"the previous run in {out}/ was kept as [cyan]{kept}/[/] (--overwrite replaces it)",
                      soft_wrap=True, highlight=False)
    elif args.overwrite and out.is_dir():
        console.print(f"replacing the previous run in {out}/ (--overwrite)", soft_wrap=True, highlight=False)
    bench = BenchmarkRun(config)
    model = "a real model (OPENAI_API_KEY)" if args.online else "the bundled offline model"
    console.print(f"[bold]halo demo[/]: {label} harness, {len(bench.tasks)} tasks, "
                  f"{min(args.workers, len(bench.tasks))} workers, {model}; traces in [cyan]{out}/[/]",
                  soft_wrap=True)
    console.print(f"while it runs, ask the live index from another terminal: [cyan]halo report {out}[/] "
                  f"or [cyan]halo {out} -p \"what fails and why?\"[/]", soft_wrap=True)
    try:
        bench.start()
    except (OSError, RuntimeError) as exc:
        bench.stop()
        raise CliError(f"could not start the benchmark: {exc}") from exc
    live = LiveView(out, bench)
    try:
        if args.no_live or not console.is_terminal:
            live.print_lines(console)
            score = bench.finish()
            live.refresh()  # the final picture, once every span is in
            console.print(live.render())
        else:
            live.show(console)  # leaves its last frame on screen
            score = bench.finish()
    except KeyboardInterrupt:
        bench.stop()
        done, total = live.progress()
        console.print(f"\nstopped after {done}/{total} tasks; the traces written so far are in {out}/ "
                      f"(see them: halo report {out})", soft_wrap=True, highlight=False)
        raise
    except BaseException:
        bench.stop()
        raise
    finally:
        live.close()
    _report(out)
    _next_steps(console, out, label, score)
    code = 1 if score.get("failed_workers") else 0
    if args.no_ask:
        return code
    return _diagnose(console, out, args.ask or ASK_QUESTION, online=_has_model(args)) or code


def _has_model(args: argparse.Namespace) -> bool:
    """A real model answers with OPENAI_API_KEY, or with --ask and a local OPENAI_BASE_URL."""
    from halo_live.engine.cli.ask import is_local

    return bool(os.environ.get("OPENAI_API_KEY")
                or (args.ask and is_local(os.environ.get("OPENAI_BASE_URL"))))


def _diagnose(console, out: Path, question: str, *, online: bool) -> int:
    """Ask the diagnostic agent about the run; halo's exit code."""
    from halo_live.engine.cli import main as halo_main

    if online:
        # With the harness's source the agent can read the code it blames (cite path:line).
        console.print(f"\n[bold]asking the diagnostic agent[/]: {question}")
        return halo_main([str(out), "-p", question, "--repo-path", str(harness_source())])
    from halo_live.demo.diagnostic_policy import ask_offline

    console.print(f"\n[bold]asking the diagnostic agent[/] (no OPENAI_API_KEY: against the offline "
                  "stand-in model, a deterministic policy, not an LLM; --no-ask skips): "
                  f"{question}", soft_wrap=True)
    started = time.monotonic()
    code = ask_offline(str(out), question)
    console.print(f"[dim]offline diagnosis in {time.monotonic() - started:.1f}s; on your own traces: "
                  f"python -m halo_live.demo.diagnostic_policy TRACE_PATH[/]", soft_wrap=True, highlight=False)
    return code


class LiveView:
    """The run as `halo watch` shows it: the same facts (`halo_live.engine.watch.Watcher`, with
    the task count as `--expect`) drawn by the same view (`halo_live.engine.watch_view`)."""

    def __init__(self, out: Path, bench) -> None:
        from halo_live.demo.openai_agents_sdk.agent import DEFAULT_REAL_MODEL, OFFLINE_MODEL
        from halo_live.engine.pricing import LIST_PRICES, Prices
        from halo_live.engine.watch import Watcher

        self.out = out
        self.bench = bench
        # the offline model stands in for the online default: its tokens are priced as that model's
        prices = Prices({OFFLINE_MODEL: LIST_PRICES[DEFAULT_REAL_MODEL]})
        self.watcher = Watcher(out, expect=max(1, len(bench.tasks)), prices=prices)
        self.frame: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"halo demo: live from {self.out}/ (the same view: halo watch {self.out})"

    def refresh(self) -> dict[str, Any]:
        self.frame = self.watcher.frame()
        return self.frame

    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks) so far."""
        expect = (self.frame or {}).get("expect") or {}
        return expect.get("done", 0), len(self.bench.tasks)

    def render(self):
        from halo_live.engine.watch_view import render

        return render(self.frame or self.refresh(), title=self.title, final=True)

    def show(self, console) -> None:
        """Redraw in place until the benchmark ends; the last frame stays on screen."""
        from halo_live.engine.watch_view import show

        self.frame = show(self.watcher, console, interval=REFRESH_S, screen=False,
                          until=lambda: not self.bench.running(), title=self.title)

    def print_lines(self, console) -> None:
        """The same facts as one line per change, for logs and pipes."""
        last = None
        while True:
            running = self.bench.running()
            f = self.refresh()
            t = f["traces"]
            done, total = self.progress()
            line = (f"{done}/{total} tasks done | traces: {t['complete']} complete, {t['running']} running, "
                    f"{t['stuck']} stuck, {t['abandoned']} abandoned | {f['spans']} spans, "
                    f"{f['errors']['traces']} traces with errors")
            if line != last:
                console.print(line, highlight=False)
                last = line
            if not running:
                return
            time.sleep(REFRESH_S)

    def close(self) -> None:
        self.watcher.close()


def harness_source() -> Path:
    """The demo harness's source folder: what `--repo-path` gives the diagnostic agent."""
    from halo_live.demo import openai_agents_sdk

    return Path(openai_agents_sdk.__file__).parent


def _check_out(out: Path) -> None:
    """Refuse, before the run starts, a folder the benchmark would refuse (`owned_files`):
    a user's `traces/traces-w0.jsonl` must never be deleted by a demo."""
    from halo_live.demo.benchmark.runner import foreign_files

    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} is a file; give a folder", EXIT_USAGE)
    theirs = foreign_files(out) if out.is_dir() else []
    if theirs:
        raise CliError(f"{out} holds trace files that halo demo did not write ({', '.join(theirs[:3])}"
                       f"{', ...' if len(theirs) > 3 else ''}); a demo run replaces the shards in its "
                       "folder: pick another --out", EXIT_USAGE)


def _keep_previous(out: Path, *, overwrite: bool) -> Path | None:
    """Move a previous demo run in `out` aside, as `out-<time it last wrote>`, so a second
    `halo demo` never silently replaces the traces of the first. Returns where it went."""
    from halo_live.demo.benchmark.runner import owned_files

    if overwrite or not out.is_dir():
        return None
    owned, is_benchmark = owned_files(out)
    if not (is_benchmark and owned):
        return None
    written = max((out / name).stat().st_mtime for name in owned)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(written))
    kept = out.with_name(f"{out.name}-{stamp}")
    n = 1
    while kept.exists():
        n += 1
        kept = out.with_name(f"{out.name}-{stamp}-{n}")
    try:
        out.rename(kept)
    except OSError as exc:
        raise CliError(f"cannot keep the previous run in {out} ({exc.strerror or exc}); "
                       "pass --overwrite to replace it, or another --out") from exc
    return kept


def _report(out: Path) -> None:
    from halo_live.engine.cli import report as cli_report

    print()
    cli_report.run(argparse.Namespace(trace_path=str(out), json=False, top=5, index_dir=None))


def _label(args: argparse.Namespace) -> str:
    """The run's name and default folder: baseline, fixed, or what was changed."""
    if args.fixed:
        return "fixed"
    parts = list(args.fix)
    if args.read_limit is not None:
        parts.append(f"read-limit-{args.read_limit}")
    if args.max_turns is not None:
        parts.append(f"max-turns-{args.max_turns}")
    return "+".join(parts) if parts else "baseline"


def _next_steps(console, out: Path, label: str, score: dict[str, Any]) -> None:
    console.print(f"\n[bold]score[/]: {score['passed']}/{score['tasks']} ({score['score']:.0%}), "
                  f"run id {score['run_id']}, written to {out / 'score.json'}", soft_wrap=True)
    for k in score.get("failed_workers") or []:
        console.print(f"[bold red]worker {k} failed[/]: see {out / 'logs' / f'w{k}.log'}", soft_wrap=True)
    if label == "baseline":
        fixed = out.parent / "fixed"
        console.print("next: ask what fails, e.g. "
                      f"[cyan]halo {out} -p \"Which tool fails most often and why?\" "
                      f"--repo-path {harness_source()}[/] (with an API key), "
                      f"or [cyan]halo report {out}[/]; then change the harness and re-run, e.g. "
                      f"[cyan]halo demo --fixed{_out_flag(fixed)}[/] (or one fix: --fix limits)", soft_wrap=True)
        verb = "measure the change" if (fixed / "score.json").exists() else "then measure the change"
        console.print(f"{verb}: [cyan]halo compare {out} {fixed}[/]", soft_wrap=True)
        return
    baseline = out.parent / "baseline"
    if (baseline / "score.json").exists():
        console.print(f"measure the change: [cyan]halo compare {baseline} {out}[/]", soft_wrap=True)
    else:
        console.print(f"run the baseline too ([cyan]halo demo{_out_flag(baseline)}[/]), then "
                      f"[cyan]halo compare {baseline} {out}[/]", soft_wrap=True)


def _out_flag(target: Path) -> str:
    return "" if target.parent == Path(DEFAULT_ROOT) else f" --out {target}"
