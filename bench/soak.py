"""Soak: a flood of OTLP clients past `halo serve`'s capacity, optionally with a SIGKILL mid-flood.

Starts a real `halo serve` on a temporary folder (live index on), then
`--clients` concurrent clients (half OTLP/gRPC, half OTLP/HTTP protobuf, in
`--procs` processes) send requests of `--spans` spans with known ids as fast as
they are answered, for `--seconds`. A throttled request (429 / 503 /
UNAVAILABLE / RESOURCE_EXHAUSTED) waits the advised delay and is sent again,
as the OTel exporters do; each client logs the ids of acknowledged requests to
a file. Meanwhile `halo tool count_traces` runs in a loop (its latency is the
"responsive" figure) and the server's RSS is sampled. With `--kill` the server
is SIGKILLed halfway and restarted on the same ports. At the end every
acknowledged span must be on disk, and (without `--kill`) exactly once.

    python bench/soak.py                      # 32 clients, 60 s
    python bench/soak.py --kill               # SIGKILL at 30 s, restart
    python bench/soak.py --short --kill       # ~15 s, what tests/test_faults_soak.py runs
    python bench/soak.py --fuzz 5000          # the fuzz tests with 5,000 examples each

Prints one JSON object of figures (and a summary line on stderr).
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from tests._fault_helpers import GrpcClient, ServeProcess, otlp_request, post_http, span_ids  # noqa: E402

RETRYABLE_HTTP = (429, 503)


def _client(proc_no: int, threads: int, target: dict, spans: int, attr_bytes: int, stop_at: float,
            give_up_at: float, log_dir: str) -> None:
    """One client process: `threads` senders (even: gRPC, odd: HTTP); acknowledged tags to a log."""
    counts = collections.Counter()
    lock = threading.Lock()
    log = open(Path(log_dir) / f"acked-{proc_no}.log", "a", buffering=1)

    def sender(thread_no: int) -> None:
        use_grpc = (proc_no * threads + thread_no) % 2 == 0
        grpc_client = GrpcClient(target["grpc"]) if use_grpc else None
        seq = 0
        while time.time() < stop_at:
            seq += 1  # from 1: tag 0 would make all-zero (invalid, rejected) ids
            tag = (proc_no << 24) | (thread_no << 16) | seq
            body = otlp_request(tag, spans, attr_bytes=attr_bytes)
            while time.time() < give_up_at:  # retry this request until acknowledged
                try:
                    if grpc_client is not None:
                        code, _ = grpc_client.export(body, timeout=30)
                        ok, name = code.name == "OK", f"grpc {code.name}"
                    else:
                        status, _, _ = post_http(target["http"], body, timeout=30)
                        ok, name = status == 200, f"http {status}"
                except OSError as exc:  # the server is down (killed): try again shortly
                    ok, name = False, f"down {type(exc).__name__}"
                with lock:
                    counts[name] += 1
                if ok:
                    log.write(f"{tag}\n")
                    break
                time.sleep(1.0 if "UNAVAILABLE" in name or "429" in name or "503" in name
                           or "EXHAUSTED" in name else 0.2)
        if grpc_client is not None:
            grpc_client.close()

    workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    (Path(log_dir) / f"counts-{proc_no}.json").write_text(json.dumps(counts))


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _count_loop(folder: Path, stop: threading.Event, latencies: list[float], errors: list[str]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "halo_live", "tool", "count_traces", str(folder)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode == 0 and '"total"' in proc.stdout:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append((proc.stderr or proc.stdout).strip()[-200:])
        stop.wait(0.5)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def soak(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="halo-soak-"))
    folder, logs = work / "traces", work / "logs"
    logs.mkdir()
    serve_args = ("--max-inflight-mb", str(args.max_inflight_mb))
    serve = ServeProcess(f"{folder}/", *serve_args)
    target = {"grpc": serve.grpc_target, "http": serve.http_url}
    ports = (str(serve.grpc_port), str(serve.http_port))
    baseline_rss = _rss_mb(serve.pid)

    started = time.time()
    stop_at = started + args.seconds
    give_up_at = stop_at + args.retry_window
    per_proc = args.clients // args.procs
    ctx = mp.get_context("spawn")
    clients = [ctx.Process(target=_client, args=(p, per_proc, target, args.spans, args.attr_bytes, stop_at,
                                                 give_up_at, str(logs))) for p in range(args.procs)]
    for c in clients:
        c.start()
    stop_counting = threading.Event()
    latencies: list[float] = []
    count_errors: list[str] = []
    counter = threading.Thread(target=_count_loop, args=(folder, stop_counting, latencies, count_errors))
    counter.start()

    peak_rss, killed_at, servers = baseline_rss, None, [serve]
    while any(c.is_alive() for c in clients):
        peak_rss = max(peak_rss, _rss_mb(servers[-1].pid))
        if args.kill and killed_at is None and time.time() >= started + args.seconds / 2:
            servers[-1].proc.kill()  # SIGKILL: no flush, no goodbye
            servers[-1].kill()
            killed_at = time.time() - started
            servers.append(_restart(folder, serve_args, ports))
        time.sleep(0.2)
    for c in clients:
        c.join()
    stop_counting.set()
    counter.join()
    code = servers[-1].terminate()
    serve_errors = [s.stderr_text() for s in servers]

    acked_tags = [int(line) for log in logs.glob("acked-*.log") for line in log.read_text().split()]
    counts = collections.Counter()
    for f in logs.glob("counts-*.json"):
        counts.update(json.loads(f.read_text()))
    on_disk = collections.Counter()
    torn = 0
    for shard in folder.glob("*.jsonl"):
        with open(shard, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    on_disk[orjson.loads(line)["span_id"]] += 1
                except orjson.JSONDecodeError:
                    torn += 1  # a killed server's last write, never acknowledged
    acked_ids = [sid for tag in acked_tags for sid in span_ids(tag, args.spans)]
    lost = sum(1 for sid in acked_ids if on_disk[sid] == 0)
    doubled = sum(1 for sid in acked_ids if on_disk[sid] > 1)
    elapsed = args.seconds
    throttled = sum(n for k, n in counts.items() if any(s in k for s in ("429", "503", "UNAVAILABLE", "EXHAUSTED")))
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "clients": args.clients, "seconds": args.seconds, "spans_per_request": args.spans,
        "attr_bytes": args.attr_bytes, "max_inflight_mb": args.max_inflight_mb,
        "killed_at_s": round(killed_at, 1) if killed_at is not None else None,
        "requests_acknowledged": len(acked_tags), "spans_acknowledged": len(acked_ids),
        "acknowledged_spans_per_s": round(len(acked_ids) / elapsed),
        "answers": dict(counts), "throttled_answers": throttled,
        "spans_lost": lost, "spans_doubled": doubled, "lines_on_disk": sum(on_disk.values()),
        "torn_lines": torn,
        "rss_mb_baseline": round(baseline_rss, 1), "rss_mb_peak": round(peak_rss, 1),
        "rss_mb_bound": args.rss_bound_mb, "rss_bound_held": peak_rss <= args.rss_bound_mb,
        "count_traces_runs": len(latencies), "count_traces_errors": len(count_errors),
        "count_traces_p50_s": round(_percentile(latencies, 0.5), 3),
        "count_traces_p99_s": round(_percentile(latencies, 0.99), 3),
        "serve_exit": code, "tracebacks": sum("Traceback" in e for e in serve_errors),
    }
    if args.keep:
        result["work_dir"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _restart(folder: Path, serve_args: tuple, ports: tuple[str, str]) -> ServeProcess:
    """A new `halo serve` on the killed one's ports (retried while the kernel frees them)."""
    for _ in range(50):
        try:
            return ServeProcess(f"{folder}/", *serve_args, fixed_ports=ports)
        except RuntimeError:
            time.sleep(0.2)
    raise RuntimeError("cannot restart halo serve on its ports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--procs", type=int, default=4, help="client processes (clients split among them)")
    parser.add_argument("--spans", type=int, default=500, help="spans per request")
    parser.add_argument("--attr-bytes", type=int, default=1000, help="payload bytes per span")
    parser.add_argument("--max-inflight-mb", type=float, default=8.0,
                        help="the server's memory bound for requests in flight (halo serve's flag)")
    parser.add_argument("--rss-bound-mb", type=float, default=256,
                        help="the stated bound on the server's RSS; the run fails past it")
    parser.add_argument("--retry-window", type=float, default=60, help="seconds clients keep retrying")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the server halfway, restart it")
    parser.add_argument("--keep", action="store_true", help="keep the traces and logs (printed as work_dir)")
    parser.add_argument("--short", action="store_true", help="8 clients, 6 s, small requests, a 0.15 MB bound")
    parser.add_argument("--fuzz", type=int, metavar="N", help="run the fuzz tests with N examples each")
    args = parser.parse_args(argv)
    if args.fuzz:
        root = Path(__file__).resolve().parent.parent
        return subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/test_faults_fuzz.py"], cwd=root,
                               env={**os.environ, "HALO_FUZZ_EXAMPLES": str(args.fuzz)})
    if args.short:
        args.seconds, args.clients, args.procs, args.spans, args.attr_bytes = 6, 8, 2, 100, 300
        args.max_inflight_mb, args.retry_window = min(args.max_inflight_mb, 0.15), 40
    result = soak(args)
    print(json.dumps(result, indent=1))
    print(f"soak: {result['spans_acknowledged']} spans acknowledged, {result['spans_lost']} lost, "
          f"{result['spans_doubled']} doubled; peak RSS {result['rss_mb_peak']} MB (bound "
          f"{result['rss_mb_bound']:g}); count_traces p99 "
          f"{result['count_traces_p99_s']} s", file=sys.stderr)
    held = result["spans_lost"] == 0 and result["rss_bound_held"]
    return 0 if held and (args.kill or result["spans_doubled"] == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
