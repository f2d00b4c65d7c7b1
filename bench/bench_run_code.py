"""`run_code` over a large dataset: how long an aggregate takes and how many host calls it makes.

    python bench/bench_run_code.py [--traces 50000] [--data PATH] [--repeat 5]

Writes the deterministic synthetic set of `bench/gen_traces.py` (50k traces is
~1.27M spans, ~3.3 GB; pass `--data` to reuse one), builds its index, then
runs each program through the registry (`run_tool(..., allow_code=True)`),
exactly as the agent and `halo tool run_code --allow-code` do. The first call
decodes every index row (the store then keeps them while the index is
unchanged); later calls are warm. Each figure is checked against
`count_traces`. Prints medians with the data size and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_traces import generate  # noqa: E402
from halo_live.engine.tools import open_store, run_tool  # noqa: E402

PROGRAMS = {
    # the example question: median tokens of failed vs passed traces per model
    "median tokens failed/passed per model": """
rows = trace_rows(fields=['has_errors', 'model_names', 'total_input_tokens', 'total_output_tokens'])
def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
groups = {}
for row in rows:
    tokens = row['total_input_tokens'] + row['total_output_tokens']
    for model in row['model_names']:
        groups.setdefault(model, {'failed': [], 'passed': []})['failed' if row['has_errors'] else 'passed'].append(tokens)
{m: {'traces': len(g['failed']) + len(g['passed']), 'failed': len(g['failed']),
     'median_failed': median(g['failed']), 'median_passed': median(g['passed'])} for m, g in groups.items()}
""",
    "error rate per agent, all fields": """
rows = trace_rows()
seen = {}
for row in rows:
    for agent in row['agent_names']:
        e = seen.setdefault(agent, [0, 0])
        e[0] += 1
        e[1] += 1 if row['has_errors'] else 0
{a: {'traces': e[0], 'failed': e[1]} for a, e in seen.items()}
""",
}


def _check(store, name: str, value: dict) -> None:
    """Each group's trace and failure counts equal count_traces with the same filter."""
    key = "model_names" if "model" in name else "agent_names"
    for group, figures in value.items():
        flt = {key: [group]}
        traces = run_tool(store, "count_traces", {"filters": flt})["result"]["total"]
        failed = run_tool(store, "count_traces", {"filters": {**flt, "has_errors": True}})["result"]["total"]
        assert figures["traces"] == traces and figures["failed"] == failed, (group, figures, traces, failed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=None, help="reuse this dataset (written if missing)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="halo-bench-run-code-"))
    data = args.data or work / "traces.jsonl"
    if not data.exists():
        t0 = time.perf_counter()
        generate(data, args.traces, seed=7)
        print(f"wrote {data} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    store = open_store(data, work / "idx")
    total = run_tool(store, "count_traces", {})["result"]["total"]
    print(f"data: {total} traces, {data.stat().st_size / 1e9:.2f} GB; index built in "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    try:
        for name, code in PROGRAMS.items():
            times, calls, value = [], set(), None
            for i in range(args.repeat + 1):
                t0 = time.perf_counter()
                got = run_tool(store, "run_code", {"code": code}, allow_code=True)
                elapsed = time.perf_counter() - t0
                if "error" in got:
                    print(f"{name}: {got['error']}")
                    return 1
                value = got["result"]["value"]
                calls.add(got["result"]["host_calls"])
                if i == 0:
                    print(f"{name}: first call {elapsed:.2f} s (decodes the index rows)")
                else:
                    times.append(elapsed)
            _check(store, name, value)
            print(f"{name}: warm median {statistics.median(times):.2f} s over {args.repeat} runs, "
                  f"host calls {sorted(calls)}; figures equal count_traces for {len(value)} groups")
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)  # the index, and the data unless --data named it
    return 0


if __name__ == "__main__":
    sys.exit(main())
