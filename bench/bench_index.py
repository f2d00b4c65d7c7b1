"""Benchmark the streaming index against halo-engine 0.3.5's builder.

Measures, on a deterministic synthetic dataset (bench/gen_traces.py):
cold build (spans/s, peak RSS of the indexer and of its parse workers),
reopen, overview / count (model filter) / first query page latencies,
catch-up after a 1% append, append-to-visible latency under `--follow`
(p50/p99), and the same build/reopen/query figures for the reference.

    python bench/bench_index.py --traces 50000            # full size: ~1.27M spans / ~3.3 GB
    python bench/bench_index.py --traces 5000 --skip-reference
    python bench/bench_index.py --reference-cache /tmp/ref.json   # measure the reference once, then reuse
    python bench/bench_index.py --pure-python     # our build without the compiled scanner
    python bench/bench_index.py --growth 5000,50000,500000 --data-dir /work/bench-data --in-place
        # the same figures at each size, then a growth table (markdown, for docs/performance.md)

`--in-place` indexes the generated file where it is instead of a copy (the 500k
set is 32.8 GB): the 1% append is cut off again at the end. The first page is
`query_traces(has_errors=True)`'s work (count, 50 ids, their rows); the filtered
overview is `get_dataset_overview(model_names=["gpt-4.1"])`, whole (taxonomy of
its first 2,000 error traces included) with its memos empty, and its index part
alone (the rollup and the sample ids).
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gen_traces import Gen, generate  # noqa: E402

# Each child measures itself and prints one JSON line.
BUILD = r"""
import json, resource, sys, time
from halo_live.indexer import TraceIndex, parse
path, index_dir, workers = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
idx = TraceIndex.open(path, index_dir, workers=None if workers == "auto" else int(workers))
stats = idx.catch_up()
secs = time.perf_counter() - t
idx.close()
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": secs, "spans": stats.spans, "native": parse.NATIVE,
    "rss_mb": me.ru_maxrss / 1024, "worker_rss_mb": kids.ru_maxrss / 1024,
    "writer_cpu_s": me.ru_utime + me.ru_stime, "writer_sys_s": me.ru_stime,
    "workers_cpu_s": kids.ru_utime + kids.ru_stime, "workers_sys_s": kids.ru_stime}))
"""

QUERIES = r"""
import json, resource, statistics, sys, time
t0 = time.perf_counter()
from halo_live.indexer import IndexFilters, TraceIndex
t1 = time.perf_counter()
idx = TraceIndex.open(sys.argv[1], sys.argv[2])
with idx.snapshot() as snap:
    total = snap.totals().total_traces
t2 = time.perf_counter()

def timed(fn, n=21):
    out = []
    for _ in range(n):
        s = time.perf_counter(); fn(); out.append(time.perf_counter() - s)
    return statistics.median(out) * 1000

def overview():
    with idx.snapshot() as snap:
        snap.totals(); snap.error_signatures()[:20]; snap.trace_ids(limit=20)

def count():
    with idx.snapshot() as snap:
        return snap.count(IndexFilters(model_names=["gpt-4.1"]))

def first_page():
    with idx.snapshot() as snap:
        flt = IndexFilters(has_errors=True)
        snap.count(flt); snap.rows(snap.trace_ids(flt, 0, 50))

from halo_live.engine.models import TraceFilters
from halo_live.engine.store import TraceStore
MODEL = TraceFilters(model_names=["gpt-4.1"])

def filtered_overview():  # the whole tool answer, memos empty (a new store over the same index)
    with idx.snapshot() as snap:
        TraceStore(idx).overview_in(snap, MODEL)

def filtered_rollup():  # its index part: the rollup and the sample ids
    with idx.snapshot() as snap:
        flt = IndexFilters(model_names=["gpt-4.1"])
        if snap.rollup(flt) is None:
            raise SystemExit("no rollup")
        snap.trace_ids(flt, 0, 20)

print(json.dumps({"traces": total, "import_ms": (t1 - t0) * 1000, "open_ms": (t2 - t1) * 1000,
    "rss_after_open_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "overview_ms": timed(overview), "count_model_ms": timed(count), "first_page_ms": timed(first_page),
    "filtered_overview_ms": timed(filtered_overview, 7), "filtered_rollup_ms": timed(filtered_rollup)}))
"""

REFERENCE = r"""
import asyncio, json, resource, statistics, sys, time
from pathlib import Path
from engine.traces.models.trace_index_config import TraceIndexConfig
from engine.traces.trace_index_builder import TraceIndexBuilder
from engine.traces.trace_store import TraceStore
from engine.traces.models.trace_query_models import TraceFilters
path, index_dir = Path(sys.argv[1]), Path(sys.argv[2])
config = TraceIndexConfig(index_dir=index_dir)
if sys.argv[3] == "serial":  # all parsing in this process, so its CPU time is measurable
    TraceIndexBuilder.SMALL_FILE_THRESHOLD = 1 << 62
t = time.perf_counter()
index_path = asyncio.run(TraceIndexBuilder.ensure_index_exists(path, config))
build = time.perf_counter() - t
if sys.argv[3] in ("build", "serial"):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": build, "rss_mb": ru.ru_maxrss / 1024, "self_cpu_s": ru.ru_utime + ru.ru_stime}))
    raise SystemExit(0)
t = time.perf_counter()
store = TraceStore.load(path, index_path)
reopen = time.perf_counter() - t
def timed(fn, n=5):
    out = []
    for _ in range(n):
        s = time.perf_counter(); fn(); out.append(time.perf_counter() - s)
    return statistics.median(out) * 1000
store._taxonomy_cache.clear()
t = time.perf_counter(); store.get_overview(TraceFilters()); overview_cold = (time.perf_counter() - t) * 1000
print(json.dumps({"seconds": build, "reopen_s": reopen,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "overview_ms": overview_cold,
    "count_model_ms": timed(lambda: store.count_traces(TraceFilters(model_names=["gpt-4.1"]))),
    "first_page_ms": timed(lambda: store.query_traces(TraceFilters(has_errors=True), 50, 0))}))
"""


ENV: dict[str, str] = {}  # for our children: HALO_INDEX_NATIVE=0 with --pure-python


def run_json(args: list[str], **kw) -> dict:
    """Run a child that prints one JSON line; adds its CPU seconds, workers included."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **ENV)
    timer = ["/usr/bin/time", "-f", "@@cpu %U %S"] if os.path.exists("/usr/bin/time") else []
    done = subprocess.run(timer + args, capture_output=True, text=True, env=env, cwd=ROOT, **kw)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():
        if line.startswith("@@cpu "):
            user, system = line.split()[1:3]
            out["cpu_s"] = float(user) + float(system)
    return out


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def append_one_percent(path: Path, traces: int, seed: int) -> tuple[int, int]:
    """Append ~1% more traces (new ids) to `path`; returns (spans, bytes) appended."""
    tmp = path.with_suffix(".append.tmp")
    spans, size = generate(tmp, max(1, traces // 100), seed=seed + 1000)
    with open(path, "ab") as out, open(tmp, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.unlink()
    return spans, size


def follow_latency(path: Path, index_dir: Path, samples: int) -> dict:
    """Append one span at a time while `halo index --follow` runs; time until a reader sees it."""
    from halo_live.indexer import TraceIndex

    env = dict(os.environ, PYTHONPATH=str(ROOT), **ENV)
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "index", str(path), "--index-dir",
                             str(index_dir), "--follow"], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    proc.stdout.readline()  # the catch-up summary: the index is current
    gen = Gen(12345, 0.0)
    reader = TraceIndex.open(path, index_dir)
    lat = []
    try:
        for i in range(samples):
            _, line = gen.trace(10_000_000 + i, "run-follow")[0]
            tid = json.loads(line)["trace_id"]
            with open(path, "ab") as fh:
                fh.write(line)
            t = time.perf_counter()
            while True:
                with reader.snapshot() as snap:
                    if snap.trace(tid) is not None:
                        break
                if time.perf_counter() - t > 10:
                    raise SystemExit("a span never became visible")
                time.sleep(0.002)
            lat.append(time.perf_counter() - t)
            time.sleep(0.02)
    finally:
        reader.close()
        proc.terminate()
        proc.wait(10)
    lat.sort()
    return {"samples": samples, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, "max_ms": lat[-1] * 1000}


def _reference(cache: Path | None, data: Path, work: Path) -> dict:
    """The reference's build and query figures: measured now, or reused from `cache`
    when it holds a measurement of the same data (its ~1.5 min barely changes)."""
    key = {"data": str(data), "size": data.stat().st_size}
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            ref = saved["ref"]
            ref["load"] = f"reused from {cache} (measured with {ref['load']})"
            return ref
    from tests.reference import ensure_reference  # the reference's own venv

    python = ensure_reference()
    ref_data = work / "ref.jsonl"
    shutil.copyfile(data, ref_data)
    ref_build = run_json([str(python), "-I", "-c", REFERENCE, str(ref_data), str(work / "ref-idx"), "build"])
    ref = run_json([str(python), "-I", "-c", REFERENCE, str(ref_data), str(work / "ref-idx"), "query"])
    # Its pool's forkserver workers escape CPU accounting: measure its work run serially instead.
    serial = run_json([str(python), "-I", "-c", REFERENCE, str(ref_data), str(work / "ref-serial"), "serial"])
    ref.update(seconds=ref_build["seconds"], cpu_s=serial["self_cpu_s"], serial_s=serial["seconds"],
               rss_mb=max(ref["rss_mb"], ref_build["rss_mb"]), load=load())
    if cache is not None:
        cache.write_text(json.dumps({"key": key, "ref": ref}))
    return ref


def measure(traces: int, args) -> dict:
    """Every figure of one dataset size (printed as it goes); returns them for the growth table."""
    args.data_dir.mkdir(parents=True, exist_ok=True)
    data = args.data_dir / f"traces-{traces}.jsonl"
    if not data.exists():
        t = time.perf_counter()
        spans, size = generate(data, traces)
        print(f"generated {traces} traces / {spans} spans / {size / 1e9:.2f} GB "
              f"in {time.perf_counter() - t:.0f}s")
    size = data.stat().st_size
    work = args.data_dir / f"work-{traces}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    if args.in_place:
        live = data
    else:
        live = work / "live.jsonl"
        shutil.copyfile(data, live)
    try:
        return _measure(traces, args, data, live, size, work)
    finally:
        if args.in_place:
            os.truncate(data, size)  # the 1% append and the follow samples go again
        shutil.rmtree(work, ignore_errors=True)


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return 1 << 62


def _measure(traces: int, args, data: Path, live: Path, size: int, work: Path) -> dict:
    if size < _available_memory() // 2:  # a file bigger than that would only churn the cache
        subprocess.run(["cat", str(live)], stdout=subprocess.DEVNULL)  # warm the page cache for both
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"data: {size / 1e9:.2f} GB, {traces} traces")
    fig: dict = {"traces": traces, "gb": size / 1e9}
    cold = run_json([sys.executable, "-c", BUILD, str(live), str(work / "idx"), args.workers])
    fig.update(build_s=cold["seconds"], rss_mb=cold["rss_mb"], worker_rss_mb=cold["worker_rss_mb"],
               build_load=load())
    rate = cold["spans"] / cold["seconds"]
    parser = "compiled scanner" if cold["native"] else "pure-Python parse"
    print(f"ours  cold build ({parser}): {cold['seconds']:.1f}s, {rate:,.0f} spans/s, {size / cold['seconds'] / 1e9:.2f} GB/s, "
          f"{cold['spans']:,} spans, "
          f"{cold.get('cpu_s', 0):.1f} CPU-s ({cold.get('cpu_s', 0) / cold['spans'] * 1e6:.1f} us/span); peak RSS {cold['rss_mb']:.0f} MB "
          f"(+ workers {cold['worker_rss_mb']:.0f} MB each); {load()}")
    per_span = 1e6 / cold["spans"]
    print(f"      where the CPU goes per span: parse workers {cold['workers_cpu_s'] * per_span:.2f} us "
          f"({cold['workers_sys_s'] * per_span:.2f} in the kernel), the one writer {cold['writer_cpu_s'] * per_span:.2f} us "
          f"({cold['writer_sys_s'] * per_span:.2f} in the kernel)")
    q = run_json([sys.executable, "-c", QUERIES, str(live), str(work / "idx")])
    fig.update(q, query_load=load())
    print(f"ours  reopen {q['open_ms']:.1f} ms (import {q['import_ms']:.0f} ms), RSS {q['rss_after_open_mb']:.0f} MB; "
          f"overview {q['overview_ms']:.2f} ms; count(model) {q['count_model_ms']:.2f} ms; "
          f"first page {q['first_page_ms']:.2f} ms; filtered overview {q['filtered_overview_ms']:.1f} ms "
          f"(its index part {q['filtered_rollup_ms']:.2f} ms) ({q['traces']:,} traces); {load()}")
    spans, added = append_one_percent(live, traces, 1)
    inc = run_json([sys.executable, "-c", BUILD, str(live), str(work / "idx"), args.workers])
    fig["catch_up_pct"] = inc["seconds"] / cold["seconds"] * 100
    print(f"ours  catch-up after +{added / size:.1%} ({spans:,} spans, {added / 1e6:.0f} MB): "
          f"{inc['seconds']:.2f}s = {inc['seconds'] / cold['seconds']:.1%} of the cold build")
    if args.follow_samples:
        fl = follow_latency(live, work / "idx", args.follow_samples)
        fig["follow_p99_ms"] = fl["p99_ms"]
        print(f"ours  append-to-visible under --follow: p50 {fl['p50_ms']:.0f} ms, p99 {fl['p99_ms']:.0f} ms, "
              f"max {fl['max_ms']:.0f} ms ({fl['samples']} appends)")
    if not args.skip_reference:
        ref = _reference(args.reference_cache, data, work)
        print(f"ref   cold build: {ref['seconds']:.1f}s, {cold['spans'] / ref['seconds']:,.0f} spans/s, "
              f"{ref.get('cpu_s', 0):.1f} CPU-s (its build run serially: {ref.get('serial_s', 0):.1f}s); "
              f"{ref['load']}; peak RSS "
              f"{ref['rss_mb']:.0f} MB (main process; its forkserver workers not counted); reopen {ref['reopen_s']:.2f}s; "
              f"overview {ref['overview_ms']:.0f} ms; count(model) {ref['count_model_ms']:.1f} ms; "
              f"first page {ref['first_page_ms']:.1f} ms")
        print(f"cold build speed-up: {ref['seconds'] / cold['seconds']:.1f}x wall-clock, "
              f"{ref.get('cpu_s', 0) / max(cold.get('cpu_s', 0), 1e-9):.1f}x CPU time "
              "(both on a shared machine; see the load averages)")
    return fig


GROWTH_ROWS = (  # (label, format of one size's figures)
    ("data", lambda f: f"{f['gb']:.2f} GB"),
    ("cold build", lambda f: f"{f['build_s']:.1f} s ({f['gb'] / f['build_s']:.2f} GB/s)"),
    ("peak RSS of the build (main + each worker)", lambda f: f"{f['rss_mb']:.0f} + {f['worker_rss_mb']:.0f} MB"),
    ("reopen / overview", lambda f: f"{f['open_ms']:.1f} / {f['overview_ms']:.2f} ms"),
    ("count_traces(model filter)", lambda f: f"{f['count_model_ms']:.2f} ms"),
    ("query_traces first page (has_errors)", lambda f: f"{f['first_page_ms']:.2f} ms"),
    ("filtered overview, whole / index part", lambda f: f"{f['filtered_overview_ms']:.1f} / {f['filtered_rollup_ms']:.2f} ms"),
    ("catch-up after a 1 % append", lambda f: f"{f['catch_up_pct']:.1f} % of cold"),
    ("append → visible under --follow", lambda f: f"p99 {f['follow_p99_ms']:.0f} ms" if "follow_p99_ms" in f else "-"),
    ("load average (build; queries)", lambda f: f"{f['build_load'][13:]}; {f['query_load'][13:]}"),
)


def growth_table(figs: list[dict]) -> str:
    """The figures of each size side by side, as a markdown table."""
    head = "| measure | " + " | ".join(f"{f['traces']:,} traces" for f in figs) + " |"
    rows = [head, "|---|" + "---|" * len(figs)]
    rows += ["| " + label + " | " + " | ".join(fmt(f) for f in figs) + " |" for label, fmt in GROWTH_ROWS]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=50_000)
    ap.add_argument("--growth", default=None, metavar="N,N,...",
                    help="measure each dataset size in turn (reference skipped), then print a growth table")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--in-place", action="store_true",
                    help="index the generated file itself, not a copy (its appended bytes are cut off after)")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--follow-samples", type=int, default=200)
    ap.add_argument("--reference-cache", type=Path, default=None,
                    help="JSON file of the reference's figures: reused if it exists (same data), else written")
    ap.add_argument("--pure-python", action="store_true",
                    help="index without the compiled scanner (HALO_INDEX_NATIVE=0), as on a machine with no C compiler")
    args = ap.parse_args(argv)
    if args.pure_python:
        ENV["HALO_INDEX_NATIVE"] = "0"
    if args.growth is None:
        measure(args.traces, args)
        return 0
    args.skip_reference = True
    figs = []
    for traces in (int(n) for n in args.growth.split(",")):
        figs.append(measure(traces, args))
        print()
    print(growth_table(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
