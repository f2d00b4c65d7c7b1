"""Sustained OTLP ingest into `halo serve`: spans/s over gRPC and HTTP protobuf, loss, send-to-queryable.

Starts a real `halo serve` subprocess on a temporary folder, sends pre-encoded
`ExportTraceServiceRequest`s (batches of 512 spans of ~2 KB each, deterministic
content) from several client processes, then checks that every span acknowledged
is in the file exactly once, and measures how long a span takes from send to
being visible in the index (p50/p99).

    python bench/bench_ingest.py [--batches 200] [--clients 4] [--probes 50]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

SPANS_PER_BATCH = 512
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


# --- deterministic payloads ---------------------------------------------------------------


def make_batch(seed: int, spans: int = SPANS_PER_BATCH) -> bytes:
    """One serialized ExportTraceServiceRequest: `spans` GenAI-ish spans of ~2 KB each."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    rng = random.Random(seed)

    def kv(key, value):
        if isinstance(value, bool):
            return KeyValue(key=key, value=AnyValue(bool_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        if isinstance(value, float):
            return KeyValue(key=key, value=AnyValue(double_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "bench-agent"), kv("service.version", "1.0"),
                                   kv("inference.project_id", "bench")])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "bench-scope", "0.1"
    words = ["alpha", "beta", "gamma", "delta", "tool", "search", "answer", "error", "plan"]
    trace_id = b""
    for i in range(spans):
        if i % 8 == 0:
            trace_id = rng.getrandbits(128).to_bytes(16, "big")
            root = rng.getrandbits(64).to_bytes(8, "big")
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = root if i % 8 == 0 else rng.getrandbits(64).to_bytes(8, "big")
        if i % 8:
            span.parent_span_id = root
        span.name = "chat gpt-4o" if i % 2 else "execute_tool search"
        span.kind = 3 if i % 2 else 1
        start = 1_750_000_000_000_000_000 + seed * 10**9 + i * 1000
        span.start_time_unix_nano, span.end_time_unix_nano = start, start + rng.randint(10**6, 10**9)
        text = " ".join(rng.choice(words) for _ in range(230))  # ~1.5 KB of prompt-like text
        span.attributes.extend([
            kv("gen_ai.operation.name", "chat" if i % 2 else "execute_tool"),
            kv("gen_ai.request.model", "gpt-4o"), kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.usage.input_tokens", rng.randint(10, 5000)),
            kv("gen_ai.usage.output_tokens", rng.randint(1, 800)),
            kv("gen_ai.tool.name", "search"), kv("temperature", 0.2), kv("stream", False),
            kv("input.value", text), kv("output.value", text[: 200]),
        ])
        if i % 50 == 7:
            span.status.code, span.status.message = 2, "tool timed out"
    return req.SerializeToString()


# --- the server ---------------------------------------------------------------------------------


class Serve:
    def __init__(self, out: Path, index: bool) -> None:
        cmd = [sys.executable, "-m", "halo_live", "serve", "--out", f"{out}/", "--grpc-port", "0",
               "--http-port", "0", "--max-body-mb", "64"] + ([] if index else ["--no-index"])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.grpc_port = self.http_port = 0
        self.shard = ""
        for line in self.proc.stdout:
            if m := re.search(r"writing (\S+)", line):
                self.shard = m.group(1)
            if m := re.search(r"gRPC listening on \S+:(\d+)", line):
                self.grpc_port = int(m.group(1))
            if m := re.search(r"HTTP listening on http://\S+:(\d+)/", line):
                self.http_port = int(m.group(1))
            if "ready" in line:
                break
        if not (self.grpc_port and self.http_port):
            raise SystemExit(f"halo serve did not start: {self.proc.stderr.read()}")

    def cpu_seconds(self) -> tuple[float, float]:
        """User + system CPU seconds so far of (the server, its indexer child), from Linux /proc."""
        def cpu(pid: int) -> float:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                return 0.0

        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            kids = []
        return cpu(self.proc.pid), sum(cpu(int(k)) for k in kids)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err.strip()


# --- clients ----------------------------------------------------------------------------------------


def _grpc_client(port: int, bodies: list[bytes], out: mp.Queue) -> None:
    import grpc

    acked = retries = 0
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(EXPORT_METHOD)
        for body in bodies:
            while True:
                try:
                    call(body, timeout=60)
                    acked += SPANS_PER_BATCH
                    break
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    retries += 1
                    time.sleep(0.2)
    out.put((acked, retries))


def _http_client(port: int, bodies: list[bytes], out: mp.Queue) -> None:
    import http.client

    acked = retries = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for body in bodies:
        while True:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                acked += SPANS_PER_BATCH
                break
            if response.status not in (429, 503):
                raise RuntimeError(f"HTTP {response.status}")
            retries += 1
            time.sleep(0.2)
    conn.close()
    out.put((acked, retries))


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children (the client processes)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(kind: str, port: int, bodies: list[bytes], clients: int) -> tuple[float, int, int]:
    target = _grpc_client if kind == "grpc" else _http_client
    queue: mp.Queue = mp.Queue()
    shares = [bodies[i::clients] for i in range(clients)]
    procs = [mp.Process(target=target, args=(port, share, queue)) for share in shares]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return elapsed, sum(r[0] for r in results), sum(r[1] for r in results)


# --- send -> queryable ----------------------------------------------------------------------------


def probe_latency(port: int, dataset: Path, probes: int, background: list[bytes],
                  pause: float = 0.1) -> list[float]:
    """Seconds from sending one span (over gRPC) to seeing its trace in the index, under load.

    The background loader sends a 512-span batch every `pause` seconds (0: as fast as it can).
    """
    import grpc

    from halo_live.indexer import TraceIndex

    stop = mp.Event()
    queue: mp.Queue = mp.Queue()
    loader = mp.Process(target=_background, args=(port, background, stop, queue, pause))
    loader.start()
    idx = TraceIndex.open(dataset)  # a separate reader, as `halo tool` would be
    delays = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(EXPORT_METHOD)
        for n in range(probes):
            body = make_batch(10_000_000 + n, spans=1)
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest)
            tid = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0] \
                .spans[0].trace_id.hex()
            t0 = time.perf_counter()
            call(body, timeout=30)
            while True:
                with idx.snapshot() as snap:
                    if snap.trace(tid) is not None:
                        break
                time.sleep(0.005)
            delays.append(time.perf_counter() - t0)
            time.sleep(0.05)
    stop.set()
    loader.join()
    idx.close()
    return delays


def _background(port: int, bodies: list[bytes], stop, out: mp.Queue, pause: float) -> None:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(EXPORT_METHOD)
        i = 0
        while not stop.is_set():
            try:
                call(bodies[i % len(bodies)], timeout=60)
            except grpc.RpcError:
                time.sleep(0.2)
            i += 1
            time.sleep(pause)  # 0.1 s: a steady ~5k spans/s of background load


def index_lag(dataset: Path, spans: int, timeout: float = 120) -> float:
    """Seconds until the server's live index counts `spans` spans (read from a separate snapshot)."""
    from halo_live.indexer import TraceIndex

    t0 = time.perf_counter()
    idx = TraceIndex.open(dataset)
    try:
        while time.perf_counter() - t0 < timeout:
            with idx.snapshot() as snap:
                if snap.totals().total_spans >= spans:
                    break
            time.sleep(0.01)
    finally:
        idx.close()
    return time.perf_counter() - t0


def count_spans(shard: str) -> tuple[int, int]:
    """(lines, distinct span ids) in the shard."""
    ids = set()
    lines = 0
    with open(shard, "rb") as fh:
        for line in fh:
            lines += 1
            ids.add(orjson.loads(line)["span_id"])
    return lines, len(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches of 512 spans per transport")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--probes", type=int, default=50, help="send-to-queryable samples (0: skip)")
    parser.add_argument("--no-index", action="store_true", help="serve without the live indexer")
    parser.add_argument("--probe-pause", type=float, default=0.1,
                        help="seconds between background batches while probing (0: full speed)")
    args = parser.parse_args()

    print(f"machine: {platform.machine()} {os.cpu_count()} cpu(s), Python {platform.python_version()}")
    bodies = [make_batch(seed) for seed in range(args.batches * 2)]
    span_bytes = sum(len(b) for b in bodies) / (len(bodies) * SPANS_PER_BATCH)
    print(f"payload: {len(bodies)} batches x {SPANS_PER_BATCH} spans, ~{span_bytes:.0f} B/span "
          f"protobuf, {args.clients} client processes")
    with tempfile.TemporaryDirectory(prefix="halo-bench-ingest-") as tmp:
        serve = Serve(Path(tmp), index=not args.no_index)
        total_acked = 0
        for kind, port, part in (("grpc", serve.grpc_port, bodies[: args.batches]),
                                 ("http", serve.http_port, bodies[args.batches:])):
            (srv0, idx0), cli0 = serve.cpu_seconds(), _children_cpu()
            elapsed, acked, retries = run_load(kind, port, part, args.clients)
            total_acked += acked
            lag = index_lag(Path(tmp), total_acked) if not args.no_index else 0.0
            (srv1, idx1), cli1 = serve.cpu_seconds(), _children_cpu()
            srv, idx, cli = srv1 - srv0, idx1 - idx0, cli1 - cli0
            print(f"{kind:>4}: {acked} spans in {elapsed:.2f} s = {acked / elapsed:,.0f} spans/s "
                  f"({retries} throttled retries)")
            print(f"      CPU per span: server {srv / acked * 1e6:.0f} us ({srv / elapsed:.0%} of a "
                  f"core), indexer {idx / acked * 1e6:.0f} us, clients {cli / acked * 1e6:.0f} us "
                  f"-> {2 / ((srv + idx + cli) / acked):,.0f} spans/s if 2 cores were all ours")
            if not args.no_index:
                print(f"      live index holds all {total_acked} spans {lag:.2f} s after the last ack")
        delays = []
        if args.probes and not args.no_index:
            delays = probe_latency(serve.grpc_port, Path(tmp), args.probes, bodies[:20],
                                   args.probe_pause)
        code, err = serve.stop()
        lines, distinct = count_spans(serve.shard)
        expected = total_acked + len(delays)
        print(f"loss check: {lines} lines, {distinct} distinct span ids for {expected} acknowledged "
              f"spans (+ background load) -> {'OK' if distinct >= expected else 'LOST SPANS'}; "
              f"serve exit {code}")
        print(f"serve: {err.splitlines()[-1] if err else ''}")
        if delays:
            delays.sort()
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
            load = "full-speed" if args.probe_pause == 0 else f"one batch per {args.probe_pause} s"
            print(f"send-to-queryable over {len(delays)} probes under {load} background load: "
                  f"p50 {statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
                  f"max {delays[-1] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
