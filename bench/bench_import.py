"""`halo import otlp-json` throughput, and what a resumed import pays to start.

    python bench/bench_import.py [--requests 2000] [--spans 20] [--repeat 3]

Writes a Collector-style file (one OTLP/JSON export request a line, each span
with OpenInference LLM attributes and a ~1 KB prompt), imports it into a new
file (spans/s, MB/s), then times a second run over the finished output (it
reads back the span ids already written, so no span is written twice, and
the checkpoint leaves nothing to decode) and a run whose checkpoint was lost. Deterministic input; medians of repeated runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from halo_live.exporter.importers.otlp_json import OtlpJsonImport
from halo_live.exporter.importers.resume import ImportTarget


def _span(r: int, s: int) -> dict:
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-x", "llm.token_count.prompt": 100 + s,
             "llm.token_count.completion": 10, "input.value": "x" * 1000}
    return {"traceId": f"{r + 1:032x}", "spanId": f"{r + 1:08x}{s + 1:08x}",
            "parentSpanId": "" if s == 0 else f"{r + 1:08x}{1:08x}", "name": f"span-{s}", "kind": 1,
            "startTimeUnixNano": str(1_700_000_000_000_000_000 + r * 1000 + s),
            "endTimeUnixNano": str(1_700_000_000_000_000_000 + r * 1000 + s + 500),
            "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                           for k, v in attrs.items()],
            "status": {}}


def write_collector_file(path: Path, requests: int, spans: int) -> None:
    with path.open("w") as f:
        for r in range(requests):
            f.write(json.dumps({"resourceSpans": [{"resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "bench"}}]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": [_span(r, s) for s in range(spans)]}]}]},
                separators=(",", ":")) + "\n")


def _import(source: Path, out: Path) -> float:
    started = time.perf_counter()
    with ImportTarget(out, "bench") as target:
        OtlpJsonImport(source, target).run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--spans", type=int, default=20, help="spans per request")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "collector.json"
        write_collector_file(source, args.requests, args.spans)
        spans, size = args.requests * args.spans, source.stat().st_size
        cold, resumed, lost = [], [], []
        for i in range(args.repeat):
            out = Path(tmp) / f"out-{i}.jsonl"
            cold.append(_import(source, out))
            resumed.append(_import(source, out))  # the checkpoint says: nothing left to read
            (out.with_name(out.name + ".halo-import.json")).unlink()  # worst case: checkpoint lost
            lost.append(_import(source, out))
        print(f"{platform.machine()} {platform.python_version()}, {spans:,} spans, {size / 1e6:.1f} MB input")
        c, r, n = statistics.median(cold), statistics.median(resumed), statistics.median(lost)
        print(f"import:        {c:.2f} s  ({spans / c:,.0f} spans/s, {size / 1e6 / c:.1f} MB/s)")
        print(f"re-run:        {r:.2f} s  (reads back {spans:,} span ids, nothing new to decode)")
        print(f"checkpoint lost: {n:.2f} s  (decodes everything again, writes nothing)")


if __name__ == "__main__":
    main()
