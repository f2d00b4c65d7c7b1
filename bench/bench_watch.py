"""Benchmark `halo watch`'s refresh: the cost of one frame (facts + drawing) on a big dataset.

    python bench/gen_traces.py /work/bench-data/full.jsonl --traces 50000 --outcomes
    python bench/bench_watch.py /work/bench-data/full.jsonl [--frames 30] [--open 64]

Times `Watcher.frame()` (catch-up of an unchanged index, one snapshot: totals,
task states, ranked signatures, newest failing traces) and `watch_view.render`
drawn to a 120x45 terminal in memory, each frame alone, median and p95 over
`--frames`. Then the same with `--open` tasks in flight, as sidecars of this
(live) process beside the file, removed afterwards. The index must be built
first (`halo index PATH`); the first frame, which opens it, is timed apart.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from halo_live.engine.watch import Watcher  # noqa: E402
from halo_live.engine.watch_view import render  # noqa: E402
from halo_live.exporter.open_spans import FORMAT, hostname, sidecar_path  # noqa: E402


def timed_frames(watcher: Watcher, frames: int) -> dict[str, float]:
    console = Console(file=io.StringIO(), width=120, height=45, force_terminal=True, color_system="truecolor")
    facts, drawing = [], []
    for _ in range(frames):
        t0 = time.perf_counter()
        frame = watcher.frame()
        t1 = time.perf_counter()
        console.print(render(frame))
        t2 = time.perf_counter()
        facts.append((t1 - t0) * 1000)
        drawing.append((t2 - t1) * 1000)
        console.file.seek(0)
        console.file.truncate()
    total = [a + b for a, b in zip(facts, drawing)]
    q = lambda xs: sorted(xs)[min(len(xs) - 1, int(0.95 * len(xs)))]  # noqa: E731
    return {"facts_ms": statistics.median(facts), "draw_ms": statistics.median(drawing),
            "frame_ms": statistics.median(total), "frame_p95_ms": q(total)}


def write_sidecars(path: str, n: int, per_file: int = 8) -> list[str]:
    """`n` open tasks of this process, `per_file` to a sidecar (pids of our own: alive)."""
    now = time.time()
    written = []
    for f in range(0, n, per_file):
        traces = [{"trace_id": f"{0xfeed0000 + i:032x}", "name": "task", "started_at": now - 60,
                   "last_activity": now - (i % 7) * 100,
                   "spans": [{"span_id": f"{i:016x}", "parent_span_id": "", "name": "agent.worker", "kind": "AGENT",
                              "agent": "worker", "model": None, "started_at": now - 60},
                             {"span_id": f"{i + 1 << 20:016x}", "parent_span_id": f"{i:016x}", "name": "response",
                              "kind": "LLM", "agent": "worker", "model": "gpt-4.1", "started_at": now - 30}]}
                  for i in range(f, min(n, f + per_file))]
        target = sidecar_path(path, pid=os.getpid(), host=hostname()).replace(
            f"-{os.getpid()}.json", f"-{os.getpid()}x{f}.json")  # several files, one live pid inside
        Path(target).write_text(json.dumps({"format": FORMAT, "pid": os.getpid(), "host": hostname(),
                                            "updated_at": now, "interval": 1.0, "service": "bench",
                                            "project_id": "bench", "traces": traces}))
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--open", type=int, default=64, help="tasks in flight for the second measure (0: none)")
    parser.add_argument("--index-dir", default=None, help="the index to use (default: beside the file)")
    args = parser.parse_args()
    size = sum(f.stat().st_size for f in [Path(args.path)] if f.is_file())
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.2f}")
    with Watcher(args.path, stuck_after=300, index_dir=args.index_dir) as watcher:
        t0 = time.perf_counter()
        first = watcher.frame()
        print(f"dataset: {args.path} ({size / 1e6:,.0f} MB), {first['traces']['total']:,} traces, "
              f"{first['spans']:,} spans; first frame (opens the index) {(time.perf_counter() - t0) * 1000:.1f} ms")
        r = timed_frames(watcher, args.frames)
        print(f"frame, nothing open ({args.frames} frames): median {r['frame_ms']:.1f} ms "
              f"(facts {r['facts_ms']:.1f} + draw {r['draw_ms']:.1f}), p95 {r['frame_p95_ms']:.1f} ms")
        if not args.open:
            return
        files = write_sidecars(args.path, args.open)
        try:
            frame = watcher.frame()
            t = frame["traces"]
            r = timed_frames(watcher, args.frames)
            print(f"frame, {args.open} tasks open in {len(files)} sidecars ({t['running']} running, {t['stuck']} "
                  f"stuck): median {r['frame_ms']:.1f} ms (facts {r['facts_ms']:.1f} + draw {r['draw_ms']:.1f}), "
                  f"p95 {r['frame_p95_ms']:.1f} ms")
        finally:
            for f in files:
                os.unlink(f)


if __name__ == "__main__":
    main()
