"""Benchmark the producer side: cost on the agent's thread per span, and writer throughput.

    python bench/bench_exporter.py [--spans 20000] [--repeats 3]

1. `on_span_start` / `on_span_end` of `HaloTracingProcessor` on the caller's
   thread (median, p99), for realistic SDK spans (generation spans with a
   ~2 KB conversation, function spans), while the writer converts and writes
   in the background; then the time for that background work to finish
   (SDK spans converted + written per second).
2. `JsonlWriter` raw throughput: pre-encoded lines of 1 KB and 70 KB, submitted
   one per call, until flushed to disk (lines/s, MB/s).
Inputs are deterministic; figures are medians over `--repeats` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.tracing import get_trace_provider  # noqa: E402
from agents.tracing.span_data import AgentSpanData, FunctionSpanData, GenerationSpanData  # noqa: E402

from halo_live.exporter import setup_tracing  # noqa: E402
from halo_live.exporter.writer import JsonlWriter  # noqa: E402


def make_spans(n: int):
    """n finished SDK spans under one agent span: 1/2 generation, 1/2 function."""
    provider = get_trace_provider()
    conversation = [{"role": "user", "content": f"question {i}: " + "lorem ipsum " * 40} for i in range(3)]
    trace = provider.create_trace("bench", trace_id="trace_" + "ab" * 16)
    agent = provider.create_span(AgentSpanData(name="bench-agent", tools=["t"]), parent=trace)
    spans = [agent]
    for i in range(n - 1):
        if i % 2:
            data = GenerationSpanData(input=conversation, output=[{"role": "assistant", "content": "ok " * 50}],
                                      model="bench-model", usage={"input_tokens": 500 + i, "output_tokens": 50})
        else:
            data = FunctionSpanData(name="t", input='{"q": %d}' % i, output="result " * 20)
        spans.append(provider.create_span(data, parent=agent))
    return trace, spans


def pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def bench_processor(n: int, directory: Path, open_spans: bool = True) -> dict[str, float]:
    trace, spans = make_spans(n)
    path = directory / "sdk.jsonl"
    processor = setup_tracing(service_name="bench", project_id="bench", path=path, install=False,
                              max_queue_lines=n + 10, open_spans=open_spans)
    clock = time.perf_counter_ns
    processor.on_trace_start(trace)
    starts, ends = [], []
    for span in spans:  # all started first, as nested spans are
        span._started_at = "2026-01-01T00:00:00.000000+00:00"
        t0 = clock()
        processor.on_span_start(span)
        starts.append(clock() - t0)
    began = time.perf_counter()
    for span in reversed(spans):
        span._ended_at = "2026-01-01T00:00:01.000000+00:00"
        t0 = clock()
        processor.on_span_end(span)
        ends.append(clock() - t0)
    processor.shutdown()
    elapsed = time.perf_counter() - began
    size = path.stat().st_size
    path.unlink()  # each run starts from an empty file (its size is the average line's)
    assert processor.dropped == 0 and processor.writer.lines_written == n
    return {
        "start_median_us": statistics.median(starts) / 1000.0, "start_p99_us": pct(starts, 0.99),
        "end_median_us": statistics.median(ends) / 1000.0, "end_p99_us": pct(ends, 0.99),
        "convert_write_spans_per_s": n / elapsed, "avg_line_bytes": size / n,
        "convert_write_mb_per_s": size / elapsed / 1e6,
    }


def bench_writer(n: int, line_bytes: int, directory: Path, fsync: str) -> dict[str, float]:
    path = directory / f"raw-{line_bytes}-{fsync}.jsonl"
    body = b'{"pad":"' + b"x" * (line_bytes - 11) + b'"}\n'
    w = JsonlWriter(path, fsync=fsync, max_queue_lines=n + 10, max_queue_bytes=4 * 1024**3)
    began = time.perf_counter()
    for _ in range(n):
        w.submit((body,))
    w.shutdown()
    elapsed = time.perf_counter() - began
    assert w.lines_written == n and w.dropped == 0
    size = path.stat().st_size
    path.unlink()
    return {"lines_per_s": n / elapsed, "mb_per_s": size / elapsed / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # with the open-span sidecar (the default) and without it (setup_tracing(open_spans=False))
        for open_spans in (False, True):
            runs = [bench_processor(args.spans, directory, open_spans) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"HaloTracingProcessor, open-span sidecar {'on' if open_spans else 'off'}, {args.spans} SDK "
                  f"spans (1/2 generation ~{med['avg_line_bytes']:.0f} B avg line), median of {args.repeats}:")
            print(f"  on_span_start: median {med['start_median_us']:.2f} us, p99 {med['start_p99_us']:.2f} us")
            print(f"  on_span_end:   median {med['end_median_us']:.2f} us, p99 {med['end_p99_us']:.2f} us")
            print(f"  background convert+write: {med['convert_write_spans_per_s']:,.0f} spans/s, "
                  f"{med['convert_write_mb_per_s']:.1f} MB/s")
        for line_bytes, count in ((1024, args.spans * 5), (70_000, max(200, args.spans // 10))):
            for fsync in ("never", "batch"):
                runs = [bench_writer(count, line_bytes, directory, fsync) for _ in range(args.repeats)]
                lps = statistics.median(r["lines_per_s"] for r in runs)
                mbs = statistics.median(r["mb_per_s"] for r in runs)
                print(f"JsonlWriter {count} lines x {line_bytes} B, fsync={fsync}: "
                      f"{lps:,.0f} lines/s, {mbs:.0f} MB/s")


if __name__ == "__main__":
    main()
