"""Soak: a flood of OTLP clients past `halo serve`'s capacity, optionally with a SIGKILL mid-flood.

Starts a real `halo serve` (default flags, live index on) on a temporary
folder. First it measures what that server can write: `--clients` clients
(half OTLP/gRPC, half OTLP/HTTP protobuf, in `--procs` processes) send
requests of `--spans` spans as fast as they are answered, for
`--calibrate-seconds` (closed loop); the spans acknowledged per second are
the capacity. Then the flood: the same clients launch requests on a schedule,
answered or not (open loop), at `--multiple` times that capacity for
`--seconds`, each client with at most `--slots` requests under way. Throttled
requests (429 / 503 / UNAVAILABLE / RESOURCE_EXHAUSTED) are retried after the
server's advice, as the OTel exporters do (`bench/soak_clients.py`); each
client logs the ids of acknowledged requests. Meanwhile `halo tool
count_traces` runs in a loop (its latency is the "responsive" figure) and the
server's RSS is sampled. With `--kill` the server is SIGKILLed halfway
through the flood and restarted on the same ports. At the end every
acknowledged span must be on disk, and (without `--kill`) exactly once.

    python bench/soak.py                      # calibrate 10 s, then 32 clients at 2x capacity for 60 s
    python bench/soak.py --kill               # SIGKILL at 30 s of the flood, restart
    python bench/soak.py --closed-loop        # the flood closed-loop too (no calibration)
    python bench/soak.py --short --kill       # ~6 s of load, what tests/test_faults_soak.py runs
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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
import soak_clients  # noqa: E402

from tests._fault_helpers import ServeProcess, span_ids  # noqa: E402

BARRIER_TIMEOUT = 300  # a client process that never reaches a phase's start is a failed run
THROTTLES = ("429", "503", "UNAVAILABLE", "EXHAUSTED")
DROPPED = soak_clients.DROPPED
# The stated bound on `halo serve`'s RSS under the default flags and this soak's requests
# (0.5 MB): ~52 MB idle + 64 MB of request bytes in flight + their decoded form and queued
# lines (16 converted at once, ~4x a request each: ~35 MB) + 8 read gRPC calls waiting
# (~4 MB) + the agent-name memory (~40 MB when full) = ~195 MB, plus what the allocator
# keeps of it across some 40 threads.
RSS_BOUND_MB = 320


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


class _RssSampler(threading.Thread):
    """Samples the current server's RSS (alone, and with its children: the indexer) every 0.2 s."""

    def __init__(self, servers: list[ServeProcess]) -> None:
        super().__init__(daemon=True)
        self.servers, self.stop = servers, threading.Event()
        self.peak = self.peak_tree = 0.0

    def run(self) -> None:
        while not self.stop.wait(0.2):
            pid = self.servers[-1].pid
            self.peak = max(self.peak, _rss_mb(pid))
            self.peak_tree = max(self.peak_tree, sum(_rss_mb(p) for p in _tree(pid)))


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return pids


def _acks(logs: Path, phase: str) -> list[tuple[int, float]]:
    """(tag, time acknowledged) of every request acknowledged in `phase`."""
    acks = []
    for log in logs.glob(f"acked-{phase}-*.log"):
        for line in log.read_text().splitlines():
            tag, at = line.split()
            acks.append((int(tag), float(at)))
    return acks


def _counts(logs: Path, phase: str) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    lag = 0
    for f in logs.glob(f"counts-{phase}-*.json"):
        found = json.loads(f.read_text())
        lag = max(lag, found.pop("launch lag max ms", 0))
        counts.update(found)
    if lag:
        counts["launch lag max ms"] = lag
    return counts


def soak(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="halo-soak-"))
    folder, logs = work / "traces", work / "logs"
    logs.mkdir()
    serve_args = ("--max-inflight-mb", str(args.max_inflight_mb)) if args.max_inflight_mb else ()
    serve = ServeProcess(f"{folder}/", *serve_args)
    target = {"grpc": serve.grpc_target, "http": serve.http_url}
    ports = (str(serve.grpc_port), str(serve.http_port))
    servers = [serve]
    baseline_rss = _rss_mb(serve.pid)
    sampler = _RssSampler(servers)
    sampler.start()

    calibrate = not args.closed_loop and not args.rate
    phases = (["calibrate"] if calibrate else []) + ["flood"]
    seconds = {"calibrate": args.calibrate_seconds, "flood": args.seconds}
    ctx = mp.get_context("spawn")
    barrier, shared = ctx.Barrier(args.procs + 1), ctx.Array("d", 2)
    per_proc = args.clients // args.procs
    procs = []
    for p in range(args.procs):
        plans = [soak_clients.Plan(phase=ph, target=target, first_client=p * per_proc, clients=per_proc,
                                   total_clients=per_proc * args.procs, spans=args.spans,
                                   attr_bytes=args.attr_bytes, seconds=seconds[ph],
                                   retry_window=args.retry_window if ph == "flood" else 20,
                                   slots=args.slots, log_dir=str(logs)) for ph in phases]
        procs.append(ctx.Process(target=soak_clients.run, args=(plans, barrier, shared)))
    for proc in procs:
        proc.start()

    capacity = args.rate
    starts: dict[str, float] = {}
    for phase in phases:
        barrier.wait(BARRIER_TIMEOUT)  # every process ready (and done with the phase before)
        if phase == "flood" and calibrate:
            stop = starts["calibrate"] + args.calibrate_seconds
            capacity = sum(args.spans for _, at in _acks(logs, "calibrate") if at <= stop) / args.calibrate_seconds
        starts[phase] = shared[0] = time.time() + 0.5
        shared[1] = args.multiple * capacity / args.spans if phase == "flood" and capacity else 0.0
        sampler.peak = sampler.peak_tree = 0.0  # the figures are the flood's (the last phase)
        barrier.wait(BARRIER_TIMEOUT)

    stop_counting = threading.Event()
    latencies: list[float] = []
    count_errors: list[str] = []
    counter = threading.Thread(target=_count_loop, args=(folder, stop_counting, latencies, count_errors))
    counter.start()
    killed_at = None
    while any(p.is_alive() for p in procs):
        if args.kill and killed_at is None and time.time() >= starts["flood"] + args.seconds / 2:
            servers[-1].proc.kill()  # SIGKILL: no flush, no goodbye
            servers[-1].kill()
            killed_at = time.time() - starts["flood"]
            servers.append(_restart(folder, serve_args, ports))
        time.sleep(0.2)
    for proc in procs:
        proc.join()
    stop_counting.set()
    counter.join()
    sampler.stop.set()
    sampler.join()
    code = servers[-1].terminate()
    serve_errors = [s.stderr_text() for s in servers]

    flood_acks = _acks(logs, "flood")
    acked_tags = [tag for phase in phases for tag, _ in _acks(logs, phase)]
    counts = _counts(logs, "flood")
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
    flood_stop = starts["flood"] + args.seconds
    launched = counts.pop("requests launched", None)
    throttled = sum(n for k, n in counts.items() if any(s in k for s in THROTTLES))
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "clients": args.clients, "seconds": args.seconds, "spans_per_request": args.spans,
        "attr_bytes": args.attr_bytes, "max_inflight_mb": args.max_inflight_mb or "default (64)",
        "loop": "closed" if args.closed_loop else "open", "slots_per_client": args.slots,
        "capacity_spans_per_s": round(capacity) if capacity else None,
        "capacity_from": "calibration" if calibrate else ("--rate" if args.rate else None),
        "calibrate_seconds": args.calibrate_seconds if calibrate else None,
        "killed_at_s": round(killed_at, 1) if killed_at is not None else None,
        "requests_acknowledged": len(acked_tags), "spans_acknowledged": len(acked_ids),
        "flood_spans_acknowledged": len(flood_acks) * args.spans,
        "flood_acknowledged_spans_per_s": round(sum(1 for _, at in flood_acks if at <= flood_stop)
                                                * args.spans / args.seconds),
        "answers": dict(counts), "throttled_answers": throttled,
        "spans_lost": lost, "spans_doubled": doubled, "lines_on_disk": sum(on_disk.values()),
        "torn_lines": torn,
        "rss_mb_baseline": round(baseline_rss, 1), "rss_mb_peak": round(sampler.peak, 1),
        "rss_mb_peak_with_indexer": round(sampler.peak_tree, 1),
        "rss_mb_bound": args.rss_bound_mb, "rss_bound_held": sampler.peak <= args.rss_bound_mb,
        "count_traces_runs": len(latencies), "count_traces_errors": len(count_errors),
        "count_traces_p50_s": round(_percentile(latencies, 0.5), 3),
        "count_traces_p99_s": round(_percentile(latencies, 0.99), 3),
        "serve_exit": code, "tracebacks": sum("Traceback" in e for e in serve_errors),
    }
    if launched is not None:
        offered = launched * args.spans / args.seconds
        result["requests_launched"] = launched
        result["offered_spans_per_s"] = round(offered)
        result["offered_multiple"] = round(offered / capacity, 2) if capacity else None
        sent = (launched - counts.get(DROPPED, 0)) * args.spans / args.seconds  # first attempts
        result["sent_multiple"] = round(sent / capacity, 2) if capacity else None
        result["acknowledged_multiple"] = round(result["flood_acknowledged_spans_per_s"] / capacity, 2) \
            if capacity else None
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
    parser.add_argument("--seconds", type=float, default=60, help="the flood's length")
    parser.add_argument("--calibrate-seconds", type=float, default=10,
                        help="the closed-loop run that measures the server's capacity first")
    parser.add_argument("--multiple", type=float, default=2.0, help="the flood's rate, times the capacity")
    parser.add_argument("--rate", type=float, help="the capacity in spans/s, instead of measuring it")
    parser.add_argument("--closed-loop", action="store_true",
                        help="flood closed-loop (send when answered), without calibrating")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--procs", type=int, default=4, help="client processes (clients split among them)")
    parser.add_argument("--slots", type=int, default=16,
                        help="open loop: requests one client has under way at once (more are dropped)")
    parser.add_argument("--spans", type=int, default=500, help="spans per request")
    parser.add_argument("--attr-bytes", type=int, default=1000, help="payload bytes per span")
    parser.add_argument("--max-inflight-mb", type=float,
                        help="the server's memory bound for requests in flight (default: halo serve's, 64)")
    parser.add_argument("--rss-bound-mb", type=float, default=RSS_BOUND_MB,
                        help="the stated bound on the server's RSS; the run fails past it")
    parser.add_argument("--retry-window", type=float, default=60,
                        help="seconds clients keep retrying after the flood")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the server halfway, restart it")
    parser.add_argument("--keep", action="store_true", help="keep the traces and logs (printed as work_dir)")
    parser.add_argument("--short", action="store_true",
                        help="8 clients, 2 s calibration + 4 s flood, small requests, a 0.15 MB bound")
    parser.add_argument("--fuzz", type=int, metavar="N", help="run the fuzz tests with N examples each")
    args = parser.parse_args(argv)
    if args.fuzz:
        root = Path(__file__).resolve().parent.parent
        return subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/test_faults_fuzz.py"], cwd=root,
                               env={**os.environ, "HALO_FUZZ_EXAMPLES": str(args.fuzz)})
    if args.short:
        args.calibrate_seconds, args.seconds, args.clients, args.procs = 2, 4, 8, 2
        args.spans, args.attr_bytes, args.retry_window = 100, 300, 40
        args.max_inflight_mb = min(args.max_inflight_mb or 0.15, 0.15)
    result = soak(args)
    print(json.dumps(result, indent=1))
    print(f"soak: {result['spans_acknowledged']} spans acknowledged, {result['spans_lost']} lost, "
          f"{result['spans_doubled']} doubled; offered {result.get('offered_multiple')}x the capacity "
          f"({result['capacity_spans_per_s']} spans/s); peak RSS {result['rss_mb_peak']} MB (bound "
          f"{result['rss_mb_bound']:g}); count_traces p99 {result['count_traces_p99_s']} s", file=sys.stderr)
    held = result["spans_lost"] == 0 and result["rss_bound_held"]
    return 0 if held and (args.kill or result["spans_doubled"] == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
