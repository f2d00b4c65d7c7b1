"""`halo demo`: run the offline benchmark and watch the live index while it runs.

The benchmark (`halo_live.demo.benchmark`) runs a codebase-helper agent on the OpenAI
Agents SDK in parallel worker processes against a bundled offline model; each
worker writes its own trace shard, each task's outcome in its trace. This command
follows those shards through the index (`halo_live.indexer.TraceIndex`) as they
grow, shows what the index says (tasks done and the score so far, from the
outcomes; traces with errors; the top error signatures by the failures they
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
REFRESH_S = 0.25

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
        done, total = live.state.get("done", 0), live.state.get("total", 0)
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
    """What the index says about the run so far; `refresh()` catches the index up."""

    def __init__(self, out: Path, bench) -> None:
        self.out = out
        self.bench = bench
        self.started = time.monotonic()
        self.index = None
        self.state: dict[str, Any] = {}

    def refresh(self) -> dict[str, Any]:
        from halo_live.engine.outcomes import rank_index_signatures
        from halo_live.indexer import DatasetError, TraceIndex

        state: dict[str, Any] = {"done": 0, "total": len(self.bench.tasks), "passed": 0,
                                 "elapsed": time.monotonic() - self.started}
        try:
            if self.index is None:
                self.index = TraceIndex.open(self.out)
            self.index.catch_up()
            with self.index.snapshot() as snap:
                totals = snap.totals()
                # a task is done once its outcome is in its trace: the score is the traces'
                ranked = rank_index_signatures(snap.error_signatures(), totals.passed_traces,
                                               totals.failed_traces)
                state.update(done=totals.outcome_traces, passed=totals.passed_traces,
                             traces=totals.total_traces, complete=totals.complete_traces,
                             spans=totals.total_spans, error_traces=totals.error_trace_count,
                             tokens=totals.total_input_tokens + totals.total_output_tokens,
                             last=totals.last_indexed_at,
                             signatures=[(s.span_name, s.status_message, s.trace_count,
                                          s.error_span_count, s.failed_trace_count)
                                         for s, _ in ranked[:5]])
        except DatasetError:
            pass  # no shard written yet
        self.state = state
        return state

    def render(self):
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        s = self.state
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        score = f"{s['passed'] / s['done']:.0%}" if s.get("done") else "-"
        head.add_row("tasks done", f"{s.get('done', 0)}/{s.get('total', 0)}   passed {s.get('passed', 0)}   "
                                   f"score so far {score}")
        head.add_row("index", f"{s.get('traces', 0)} traces ({s.get('traces', 0) - s.get('complete', 0)} in "
                              f"progress), {s.get('spans', 0)} spans, {s.get('tokens', 0):,} tokens")
        err = s.get("error_traces", 0)
        share = f" ({err / s['traces']:.0%})" if s.get("traces") else ""
        head.add_row("traces with errors", f"{err}{share}")
        ago = f"{max(0.0, time.time() - s['last']):.1f}s ago" if s.get("last") else "-"
        head.add_row("last span indexed", f"{ago}   elapsed {s.get('elapsed', 0):.1f}s")
        sigs = Table(title="top error signatures (live), by the failures they explain", title_justify="left",
                     expand=False)
        sigs.add_column("traces", justify="right")
        sigs.add_column("spans", justify="right")
        sigs.add_column("failed", justify="right")
        sigs.add_column("span")
        sigs.add_column("status message")
        for name, message, traces, spans, failed in s.get("signatures", []):
            sigs.add_row(str(traces), str(spans), str(failed), name, " ".join(message.split())[:70])
        if not s.get("signatures"):
            sigs.add_row("-", "-", "-", "no errors yet", "")
        return Panel(Group(head, sigs), title=f"live from the index of {self.out}/", title_align="left")

    def show(self, console) -> None:
        from rich.live import Live

        self.refresh()
        with Live(self.render(), console=console, refresh_per_second=8, transient=False) as live:
            while self.bench.running():
                self.refresh()
                live.update(self.render())
                time.sleep(REFRESH_S)
            self.refresh()
            live.update(self.render())

    def print_lines(self, console) -> None:
        """The same facts as one line per change, for logs and pipes."""
        last = None
        while True:
            running = self.bench.running()
            s = self.refresh()
            line = (f"{s['done']}/{s['total']} tasks, {s['passed']} passed | index: "
                    f"{s.get('traces', 0)} traces, {s.get('spans', 0)} spans, "
                    f"{s.get('error_traces', 0)} with errors")
            if line != last:
                console.print(line, highlight=False)
                last = line
            if not running:
                return
            time.sleep(REFRESH_S * 4)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


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
