"""What task outcomes cost the index build, on a deterministic synthetic dataset.

Builds, each in a fresh child process and a fresh index, `--repeat` rounds of one build of
each variant in turn (interleaved, so a busy neighbour slows every variant alike; medians,
and the CPU time of the build with its parse workers, the steadier figure on a shared machine):

  A   this code, the dataset without outcomes            (what every build pays for the feature)
  B   this code, the same traces plus one outcome span each (bench/gen_traces.py --outcomes)
  0   with --baseline DIR: the code before outcomes, on the dataset without them
  0B  ... and on the dataset with them (to it outcome spans are spans like any other)

and times the outcome queries on B's index (count by outcome, the pass-rate overview facts).

    python bench/bench_outcomes.py --traces 50000 --baseline /tmp/halo-before   # ~3.3 GB per dataset
    python bench/bench_outcomes.py --traces 5000 --repeat 5

`--baseline` is a checkout of the code to compare with, its scanner built in place
(`git worktree add /tmp/halo-before REV && cd /tmp/halo-before && python setup.py build_ext --inplace`).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_index import BUILD, load  # noqa: E402
from bench.gen_traces import generate  # noqa: E402

QUERIES = r"""
import json, statistics, sys, time
from halo_live.indexer import IndexFilters, TraceIndex
idx = TraceIndex.open(sys.argv[1], sys.argv[2])
def timed(fn, n=21):
    out = []
    for _ in range(n):
        s = time.perf_counter(); fn(); out.append(time.perf_counter() - s)
    return statistics.median(out) * 1000
def count(outcome):
    with idx.snapshot() as snap:
        return snap.count(IndexFilters(outcome=outcome))
def facts():
    with idx.snapshot() as snap:
        t = snap.totals()
        snap.count(IndexFilters(outcome="failed", has_errors=False))
        return t.passed_traces, t.failed_traces
def by_score():
    with idx.snapshot() as snap:
        return snap.count(IndexFilters(max_score=0.25))
passed, failed = facts()
print(json.dumps({"passed": passed, "failed": failed, "count_failed_ms": timed(lambda: count("failed")),
                  "count_unknown_ms": timed(lambda: count("unknown")), "facts_ms": timed(facts),
                  "score_bound_ms": timed(by_score, 5)}))
"""


def namespace_for(checkout: Path, where: Path) -> Path:
    """A folder that imports `halo_live` from `checkout` (as its setup.py maps the rooms)."""
    ns = where / "halo_live"
    ns.mkdir(parents=True)
    for item in (checkout / "halo_live").iterdir():
        if item.suffix == ".py":
            (ns / item.name).symlink_to(item)
    for room in ("exporter", "indexer", "engine", "demo"):
        (ns / room).symlink_to(checkout / room)
    return where


def child(code: str, args: list[str], pythonpath: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    timer = ["/usr/bin/time", "-f", "@@cpu %U %S"] if os.path.exists("/usr/bin/time") else []
    done = subprocess.run(timer + [sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():
        if line.startswith("@@cpu "):
            out["cpu_s"] = sum(float(x) for x in line.split()[1:3])
    return out


def build(data: Path, work: Path, pythonpath: Path, workers: str) -> dict:
    shutil.rmtree(work / "idx", ignore_errors=True)
    return child(BUILD, [str(data), str(work / "idx"), workers], pythonpath)


def summary(runs: list[dict]) -> dict:
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "cpu_s": statistics.median(r.get("cpu_s", 0.0) for r in runs),
            "all": [round(r["seconds"], 2) for r in runs], "spans": runs[0]["spans"],
            "native": runs[0]["native"]}


def dataset(data_dir: Path, traces: int, outcomes: bool) -> Path:
    path = data_dir / f"traces-{traces}{'-outcomes' if outcomes else ''}.jsonl"
    if not path.exists():
        t = time.perf_counter()
        spans, size = generate(path, traces, outcomes=outcomes)
        print(f"generated {path.name}: {spans:,} spans, {size / 1e9:.2f} GB in {time.perf_counter() - t:.0f}s")
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL)  # warm the page cache
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=50_000)
    ap.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout of the code before outcomes, scanner built in place")
    args = ap.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    plain = dataset(args.data_dir, args.traces, outcomes=False)
    with_outcomes = dataset(args.data_dir, args.traces, outcomes=True)
    work = Path(tempfile.mkdtemp(prefix="halo-bench-outcomes-", dir=args.data_dir))
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
              f"{args.traces:,} traces: {plain.stat().st_size / 1e9:.2f} GB without outcomes, "
              f"+{(with_outcomes.stat().st_size - plain.stat().st_size) / 1e6:.1f} MB of outcome spans; "
              f"median of {args.repeat} cold builds each; {load()}")
        variants = {"A": (plain, ROOT), "B": (with_outcomes, ROOT)}
        if args.baseline is not None:
            before = namespace_for(args.baseline.resolve(), work / "baseline-ns")
            variants = {"0": (plain, before), "0B": (with_outcomes, before), **variants}
        runs: dict[str, list[dict]] = {key: [] for key in variants}
        for _ in range(args.repeat):
            for key, (data, pythonpath) in variants.items():
                runs[key].append(build(data, work, pythonpath, args.workers))
        figures = {key: summary(r) for key, r in runs.items()}
        labels = {"0": "before outcomes, no outcome spans", "0B": "before outcomes, an outcome span per trace",
                  "A": "this code, no outcome spans", "B": "this code, an outcome span per trace"}
        for key, f in figures.items():
            print(f"{key:<3} {labels[key]:<42} {f['seconds']:6.2f}s (runs {f['all']}), {f['cpu_s']:.2f} CPU-s, "
                  f"{f['spans']:,} spans, {'compiled scanner' if f['native'] else 'pure Python'}")
        base = figures.get("0", figures["A"])

        def change(a: dict, b: dict) -> str:
            return (f"{b['seconds'] / a['seconds'] - 1:+.1%} wall-clock, "
                    f"{b['cpu_s'] / max(a['cpu_s'], 1e-9) - 1:+.1%} CPU")

        if "0" in figures:
            print(f"the code for outcomes, on a dataset without them (A vs 0): {change(base, figures['A'])}")
            print(f"reading the outcomes of a dataset with them (B vs 0B, the same bytes): "
                  f"{change(figures['0B'], figures['B'])}")
        print(f"outcome spans (+{figures['B']['spans'] - figures['A']['spans']:,}), this code (B vs A): "
              f"{change(figures['A'], figures['B'])}")
        q = child(QUERIES, [str(with_outcomes), str(work / "idx")], ROOT)
        print(f"queries on B: {q['passed']:,} passed / {q['failed']:,} failed; count(outcome=failed) "
              f"{q['count_failed_ms']:.2f} ms, count(outcome=unknown) {q['count_unknown_ms']:.2f} ms, "
              f"pass-rate facts {q['facts_ms']:.2f} ms, count(max_score) {q['score_bound_ms']:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
