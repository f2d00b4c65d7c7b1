"""Answer sizes of the trace tools: unbounded (as before budgets), the tools' own bound, `halo mcp`'s.

    python bench/bench_budget.py [--traces 2000] [--budget 40000] [--sample 0]

Two deterministic 2k-trace datasets: the test generator's (tests/_tools_helpers,
with one trace of 500 failed tool calls added) and the realistic one of
bench/gen_traces.py (payloads of a few KB per span). For each call it prints the
answer's size in characters of compact JSON with no bound (what every tool
answered before budgets; the reference's own view budgets still apply), with
the tools' own bound (150,000: the agent and `halo tool`) and with `halo mcp`'s
(40,000), and under a bound how many pages the cursor needs to reach the end
and the biggest page. Views are measured on every trace (or `--sample` of them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import gen_traces  # noqa: E402
from halo_live.engine.budget import DEFAULT_BUDGET_CHARS, compact  # noqa: E402
from halo_live.engine.tools import open_store, run_tool  # noqa: E402
from tests import _tools_helpers as gen  # noqa: E402

UNBOUNDED = 10**12


def walk(store, tool: str, args: dict, budget: int) -> tuple[int, int, int]:
    """(first answer's size, pages to the end, biggest page) following the cursor."""
    offset, pages, biggest, first = 0, 0, 0, 0
    while True:
        answer = run_tool(store, tool, {**args, "offset": offset} if offset else args, budget)
        assert "error" not in answer, answer
        size = len(compact(answer))
        first, pages, biggest = first or size, pages + 1, max(biggest, size)
        result = answer["result"]
        if "next_offset" in result:
            offset = result["next_offset"]
        elif tool.startswith("search") and result["has_more"]:
            offset += result["returned_match_count"]
        elif tool == "query_traces" and offset + len(result["traces"]) < result["total"]:
            offset += len(result["traces"])
        else:
            return first, pages, biggest


def measure(store, calls: list[tuple[str, str, list[dict]]], budgets: list[int]) -> None:
    head = "".join(f"{'unbounded' if b == UNBOUNDED else f'<= {b:,}':>30}" for b in budgets)
    print(f"{'call':34}{head}")
    print(f"{'':34}" + "".join(f"{'size (median/max)  pages  max':>30}" for _ in budgets))
    for label, tool, arg_list in calls:
        cells = []
        for b in budgets:
            walked = [walk(store, tool, a, b) for a in arg_list]
            sizes = [w[0] for w in walked]
            size = f"{sizes[0]:,}" if len(sizes) == 1 else f"{statistics.median(sizes):,.0f}/{max(sizes):,}"
            pages = sum(w[1] for w in walked)
            cells.append(f"{size:>16} {pages:>6} {max(w[2] for w in walked):>7,}")
        print(f"{label:34}" + "".join(f"{c:>30}" for c in cells))


def battery(lines: list[bytes], sample: int, search: tuple[str, str]) -> list[tuple[str, str, list[dict]]]:
    spans: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for line in lines:
        span = json.loads(line)
        spans.setdefault(span["trace_id"], []).append(span["span_id"])
        sizes[span["span_id"]] = len(line)
    traces = list(spans)
    if sample:
        traces = traces[:: max(1, len(traces) // sample)][:sample]
    trace, regex = search
    biggest_span = max(spans[trace], key=lambda s: sizes[s])
    n = len(traces)
    return [
        ("get_dataset_overview", "get_dataset_overview", [{}]),
        ("get_failure_report", "get_failure_report", [{}]),
        ("query_traces limit 500", "query_traces", [{"limit": 500}]),
        (f"view_trace, {n} traces", "view_trace", [{"trace_id": t} for t in traces]),
        (f"view_spans all ids, {n} traces", "view_spans",
         [{"trace_id": t, "span_ids": spans[t][:200]} for t in traces]),
        (f"search_trace {regex!r} 500, ctx 100", "search_trace",
         [{"trace_id": trace, "regex_pattern": regex, "max_matches": 500}]),
        (f"search_trace {regex!r} 500, ctx 2000", "search_trace",
         [{"trace_id": trace, "regex_pattern": regex, "max_matches": 500, "context_buffer_chars": 2000}]),
        ("search_span '.' 500, ctx 2000", "search_span",
         [{"trace_id": trace, "span_id": biggest_span, "regex_pattern": ".", "max_matches": 500,
           "context_buffer_chars": 2000}]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=40_000, help="halo mcp's bound (default 40,000)")
    ap.add_argument("--sample", type=int, default=0, help="views on this many traces (0: all)")
    args = ap.parse_args()
    budgets = [UNBOUNDED, DEFAULT_BUDGET_CHARS, args.budget]
    tmp = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    try:
        print(f"# {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}; "
              "sizes in characters of compact JSON")
        lines = gen.generate(args.traces, seed=1, big_every=97, incomplete_every=50) + gen.error_trace(500)
        path = gen.write(tmp / "tests.jsonl", lines)
        error_trace = json.loads(lines[-1])["trace_id"]
        print(f"\n## test generator: {args.traces} traces + one of 500 failed tool calls, {len(lines):,} spans, "
              f"{path.stat().st_size / 1e6:.1f} MB")
        t0 = time.perf_counter()
        with open_store(path) as store:
            measure(store, battery(lines, args.sample, (error_trace, "STATUS_CODE_ERROR")), budgets)
        real = tmp / "realistic.jsonl"
        gen_traces.generate(real, args.traces)
        lines = real.read_bytes().splitlines(keepends=True)
        counts: dict[str, int] = {}
        for line in lines:
            tid = json.loads(line)["trace_id"]
            counts[tid] = counts.get(tid, 0) + 1
        biggest = max(counts, key=counts.get)
        print(f"\n## bench/gen_traces.py: {args.traces} traces, {len(lines):,} spans, "
              f"{real.stat().st_size / 1e6:.1f} MB")
        with open_store(real) as store:
            measure(store, battery(lines, args.sample, (biggest, "the")), budgets)
        print(f"\n({time.perf_counter() - t0:.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
