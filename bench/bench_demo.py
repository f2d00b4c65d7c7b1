"""Benchmarks of the demo side: model server throughput, a benchmark run, `halo compare`.

    python bench/bench_demo.py [--requests 300] [--tasks 36] [--workers 4]

Prints requests/s of the model server (Responses and Chat, streamed and not,
one client with 8 concurrent requests), the wall time of a whole offline
benchmark run (offline model at full speed), and the time of `compare` on two
such runs. Deterministic inputs; medians of repeats where cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

from halo_live.demo.benchmark import BenchmarkConfig, run_benchmark  # noqa: E402
from halo_live.demo.model_server import ModelServer, Reply, ToolCall  # noqa: E402
from halo_live.demo.openai_agents_sdk.agent import settings_from  # noqa: E402
from halo_live.engine.compare import compare_paths  # noqa: E402

TEXT = "the value is 8080, defined in src/ledger/config.py on line 34 " * 4


def policy(turn):
    if len(turn.messages) % 2:
        return Reply(text=TEXT)
    return Reply(tool_calls=[ToolCall("read_file", '{"path": "src/ledger/config.py", "max_lines": 40}')])


async def _hammer(base_url: str, api: str, stream: bool, n: int, concurrency: int = 8) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            msgs = [{"role": "user", "content": f"question {i}"}] * (1 + i % 2)
            if api == "responses":
                if stream:
                    async for _ in await client.responses.create(model="m", input=msgs, stream=True):
                        pass
                else:
                    await client.responses.create(model="m", input=msgs)
            else:
                if stream:
                    async for _ in await client.chat.completions.create(
                            model="m", messages=msgs, stream=True, stream_options={"include_usage": True}):
                        pass
                else:
                    await client.chat.completions.create(model="m", messages=msgs)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    await client.close()
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=36)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip-benchmark", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}")
    with ModelServer(policy) as server:
        for api in ("responses", "chat"):
            for stream in (False, True):
                rates = [asyncio.run(_hammer(server.base_url, api, stream, args.requests)) for _ in range(3)]
                print(f"model server {api:9s} stream={stream!s:5s}: {statistics.median(rates):7.0f} req/s "
                      f"(median of 3 x {args.requests} requests, 8 in flight)")
    if args.skip_benchmark:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for preset in ("baseline", "fixed"):
            start = time.perf_counter()
            score = run_benchmark(BenchmarkConfig(out=Path(tmp) / preset, workers=args.workers,
                                                  tasks=args.tasks, latency=0, settings=settings_from(preset)))
            times[preset] = time.perf_counter() - start
            spans = sum(len(p.read_bytes().splitlines()) for p in (Path(tmp) / preset).glob("traces-w*.jsonl"))
            print(f"benchmark {preset:8s}: {args.tasks} tasks, {args.workers} workers, {spans} spans, "
                  f"score {score['score']:.2f}, wall {times[preset]:.1f} s")
        compare_times = []
        for _ in range(3):
            start = time.perf_counter()
            compare_paths(Path(tmp) / "baseline", Path(tmp) / "fixed")
            compare_times.append(time.perf_counter() - start)
        print(f"compare (indexes already built): median {statistics.median(compare_times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
