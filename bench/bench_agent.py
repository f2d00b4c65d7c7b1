"""Diagnostic-agent overhead and compaction, against the local scripted model server.

    python bench/bench_agent.py [--traces 2000] [--turns 30] [--repeat 3] [--process]

The model answers instantly (halo_live.demo.model_server), so the times are halo's own
cost per turn: the SDK loop, HTTP to the server, the tool call on the live
index, printing. The compaction run reads many big traces and reports the
largest model input with and without compaction. `--process` also times the
whole `halo TRACE -p` process against a model-server process, cold (index
built first) and warm. (halo-engine 0.3.5's agent cannot run here: its venv
holds only what its tool answers need.) Deterministic input
(bench/gen_traces.py); medians of repeated runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_traces import generate  # noqa: E402
from halo_live.demo.model_server import ModelServer, Reply, ToolCall  # noqa: E402
from halo_live.engine.agent.ask import AgentSettings, ask  # noqa: E402
from halo_live.engine.agent.display import StepPrinter  # noqa: E402
from halo_live.engine.tools import open_store, run_tool  # noqa: E402


def _ids(path: Path, n: int) -> list[str]:
    store = open_store(path)
    try:
        rows = run_tool(store, "query_traces", {"limit": n})["result"]["traces"]
    finally:
        store.close()
    return [r["trace_id"] for r in rows]


class Script:
    """Root calls one tool per turn from `calls`, then answers."""

    def __init__(self, calls: list[ToolCall]) -> None:
        self.calls = calls
        self.n = 0
        self.input_chars: list[int] = []

    def __call__(self, turn) -> Reply:
        if "compress one tool result" in (turn.instructions or ""):
            return Reply(text="summary: " + "x" * 200)
        self.input_chars.append(len(json.dumps(turn.messages)))
        if self.n < len(self.calls):
            self.n += 1
            return Reply(tool_calls=[self.calls[self.n - 1]])
        return Reply(text="done")


def _tool_mix(ids: list[str], turns: int) -> list[ToolCall]:
    mix = []
    for i in range(turns):
        tid = ids[i % len(ids)]
        mix.append([
            ToolCall("get_dataset_overview", "{}"),
            ToolCall("count_traces", '{"filters": {"has_errors": true}}'),
            ToolCall("query_traces", '{"limit": 20, "filters": {"has_errors": true}}'),
            ToolCall("search_trace", json.dumps({"trace_id": tid, "regex_pattern": "Error"})),
            ToolCall("view_trace", json.dumps({"trace_id": tid})),
        ][i % 5])
    return mix


class CliPolicy:
    """For whole-process runs (both CLIs): `turns` tool calls, then `final_answer`."""

    def __init__(self, ids: list[str], turns: int) -> None:
        self.calls = _tool_mix(ids, turns)
        self.n = 0

    def __call__(self, turn) -> Reply:
        if "compress one tool result" in (turn.instructions or ""):
            return Reply(text="summary: " + "x" * 200)
        if self.n < len(self.calls):
            self.n += 1
            return Reply(tool_calls=[self.calls[self.n - 1]])
        return Reply(tool_calls=[ToolCall("final_answer", '{"answer": "done"}')])


def cli_policy(ids: list[str], turns: int) -> CliPolicy:
    return CliPolicy(ids, turns)


def _time_cli(make_argv, ids: list[str], turns: int, cwd: Path) -> float:
    from halo_live.demo.model_process import ModelServerProcess

    with ModelServerProcess("bench.bench_agent:cli_policy", {"ids": ids, "turns": turns}) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HALO_"))}
        env["PYTHONPATH"] = ""
        argv = make_argv(server.base_url)
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=900)
        elapsed = time.perf_counter() - started
    if proc.returncode != 0 or "done" not in proc.stdout:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return elapsed


def _time_process(path: Path, ids: list[str], turns: int, repeat: int) -> None:
    """Whole `halo TRACE -p` processes: cold (index built first), then warm."""
    repo = Path(__file__).resolve().parents[1]

    def argv(copy: Path):
        return lambda url: [sys.executable, "-m", "halo_live", str(copy), "-p", "bench", "--base-url", url,
                            "--api-key", "k", "-m", "test-model", "--max-depth", "0",
                            "--max-turns", str(turns + 5), "--api", "responses"]

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copy(path, copy)  # fresh: no index yet
        cold = _time_cli(argv(copy), ids, turns, repo)
        warm = statistics.median(_time_cli(argv(copy), ids, turns, repo) for _ in range(repeat))
    print(f"whole process, {turns} tool turns: cold {cold:6.2f} s (index build included), "
          f"warm {warm:6.2f} s (median of {repeat})")


def _run(path: Path, script: Script, settings: AgentSettings) -> tuple[float, Script]:
    with ModelServer(script) as server:
        settings.base_url, settings.api_key = server.base_url, "bench"
        started = time.perf_counter()
        asyncio.run(ask(path, "bench", settings, printer=StepPrinter(quiet=True)))
        return time.perf_counter() - started, script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--process", action="store_true",
                        help="also time whole `halo TRACE -p` processes, cold and warm")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.jsonl"
        generate(path, args.traces)
        size = path.stat().st_size
        ids = _ids(path, 50)
        print(f"# {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}")
        print(f"# dataset: {args.traces} traces, {size / 1e6:.1f} MB; {args.turns} tool turns per run")
        for api in ("chat", "responses"):
            for stream in (True, False):
                times = []
                for _ in range(args.repeat):
                    settings = AgentSettings(model="bench", api=api, stream=stream, max_turns=args.turns + 5)
                    elapsed, _ = _run(path, Script(_tool_mix(ids, args.turns)), settings)
                    times.append(elapsed)
                med = statistics.median(times)
                print(f"agent loop {api:9s} {'stream' if stream else 'plain ':6s}: "
                      f"{med:6.2f} s per run, {1000 * med / (args.turns + 1):6.1f} ms per turn (median of {args.repeat})")

        views = [ToolCall("view_trace", json.dumps({"trace_id": t})) for t in ids[:40]]
        for threshold in (10**9, 60_000):
            settings = AgentSettings(model="bench", api="chat", max_turns=60,
                                     compaction_threshold_chars=threshold)
            elapsed, script = _run(path, Script(list(views)), settings)
            label = "off" if threshold == 10**9 else f"at {threshold} chars"
            print(f"compaction {label:16s}: {len(views)} view_trace turns, largest model input "
                  f"{max(script.input_chars) / 1000:7.1f} k chars, last {script.input_chars[-1] / 1000:7.1f} k, "
                  f"{elapsed:5.2f} s")
        if args.process:
            _time_process(path, ids, args.turns, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
