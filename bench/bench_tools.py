"""Trace-tool latency: halo-live's store vs halo-engine 0.3.5 on the same file.

    python bench/bench_tools.py [--traces 5000] [--repeat 5]

Deterministic input (tests/_tools_helpers.generate), medians of repeated
calls on a warm store. The reference runs in its own venv (tests/reference.py)
with its own index build; both times are printed with the data size.
"""

from __future__ import annotations

import argparse
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

from halo_live.engine.tools import open_store, run_tool  # noqa: E402
from tests import _tools_helpers as gen  # noqa: E402
from tests.reference import ensure_reference  # noqa: E402

_REF_DRIVER = r"""
import asyncio, json, statistics, sys, time
from pathlib import Path
from engine.traces.models.trace_index_config import TraceIndexConfig
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore
from engine.traces.models import trace_query_models as m
job = json.load(sys.stdin)
path = Path(job["path"])
t0 = time.perf_counter()
index = asyncio.run(TraceIndexBuilder.ensure_index_exists(path, TraceIndexConfig(index_dir=Path(job["index_dir"]))))
store = TraceStore.load(path, index)
load = time.perf_counter() - t0
def call(name, a):
    if name == "get_dataset_overview":
        return store.get_overview(m.DatasetOverviewArguments.model_validate(a).filters)
    if name == "count_traces":
        return store.count_traces(m.CountTracesArguments.model_validate(a).filters)
    if name == "query_traces":
        x = m.QueryTracesArguments.model_validate(a); return store.query_traces(x.filters, x.limit, x.offset)
    if name == "view_trace":
        return store.view_trace(a["trace_id"])
    if name == "search_trace":
        return store.search_trace(a["trace_id"], a["regex_pattern"])
out = {}
for label, name, a in job["calls"]:
    times = []
    for _ in range(job["repeat"]):
        t = time.perf_counter(); r = call(name, a); r.model_dump_json(); times.append(time.perf_counter() - t)
    out[label] = statistics.median(times)
json.dump({"load": load, "calls": out}, sys.stdout)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--big-every", type=int, default=97, help="every Nth trace carries huge attributes")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    try:
        _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the data and both indexes: hundreds of MB


def _run(args: argparse.Namespace, tmp: Path) -> None:
    lines = gen.generate(args.traces, seed=1, big_every=args.big_every, incomplete_every=50)
    path = gen.write(tmp / "traces.jsonl", lines)
    size_mb = path.stat().st_size / 1e6
    first = json.loads(lines[0])["trace_id"]
    calls = [
        ("overview (all)", "get_dataset_overview", {}),
        ("overview has_errors", "get_dataset_overview", {"filters": {"has_errors": True}}),
        ("count model filter", "count_traces", {"filters": {"model_names": ["o3"]}}),
        ("count regex", "count_traces", {"filters": {"regex_pattern": "FileNotFound",
                                                      "agent_names": ["coder"]}}),
        ("query page 50", "query_traces", {"filters": {"has_errors": True}, "offset": 100}),
        ("view_trace", "view_trace", {"trace_id": first}),
        ("search_trace", "search_trace", {"trace_id": first, "regex_pattern": "tool\\.\\w+"}),
    ]
    print(f"# {args.traces} traces, {len(lines)} spans, {size_mb:.1f} MB; "
          f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}")
    t0 = time.perf_counter()
    store = open_store(path)
    build = time.perf_counter() - t0
    ours = {}
    for label, name, a in calls:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            run_tool(store, name, a)
            times.append(time.perf_counter() - t)
        ours[label] = statistics.median(times)
    store.close()

    ref = None
    if not args.no_reference:
        python = ensure_reference()
        job = {"path": str(path), "index_dir": str(tmp / "ref-index"), "repeat": args.repeat,
               "calls": [list(c) for c in calls]}
        done = subprocess.run([str(python), "-I", "-c", _REF_DRIVER], input=json.dumps(job),
                              capture_output=True, text=True, timeout=1800)
        ref = json.loads(done.stdout) if done.returncode == 0 else None
        if ref is None:
            print("reference failed:", done.stderr[-500:])

    print(f"{'':24} {'halo-live':>12} {'reference':>12}")
    print(f"{'index build + open':24} {build * 1e3:10.1f}ms "
          f"{(ref['load'] * 1e3 if ref else float('nan')):10.1f}ms")
    for label, _, _ in calls:
        r = ref["calls"][label] * 1e3 if ref else float("nan")
        print(f"{label:24} {ours[label] * 1e3:10.2f}ms {r:10.2f}ms")


if __name__ == "__main__":
    main()
