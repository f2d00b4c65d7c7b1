"""The soak's OTLP clients: closed-loop (send when answered) or open-loop (send on a schedule).

Each client process runs several clients, even-numbered ones over OTLP/gRPC,
odd ones over OTLP/HTTP protobuf. A request's span ids derive from its tag
(`tests._fault_helpers.span_ids`), and each acknowledged tag is logged with
its time, so the soak can check the files on disk against the logs.

Throttled requests are retried as opentelemetry-python's exporters do: after
the server's advice (gRPC `RetryInfo`, HTTP `Retry-After`) when it gives one,
else after 2**n seconds with +-20% jitter. A request is given up (never
acknowledged) only past the plan's `give_up_at`.
"""

from __future__ import annotations

import collections
import heapq
import http.client
import json
import random
import threading
import time
from concurrent import futures
from dataclasses import dataclass, replace
from pathlib import Path

from tests._fault_helpers import GrpcClient, otlp_request, post_http

PLACEHOLDER_TAG = 0x7A3C5E91  # a template's tag, swapped for each request's
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
MAX_BACKOFF_S = 16.0
DOWN_RETRY_S = 0.2  # the server is not there (killed): it comes back within a second or two
PHASES = {"calibrate": 1, "flood": 2}
DROPPED = "requests dropped by clients (all slots busy)"


@dataclass(frozen=True)
class Plan:
    """What one client process does: its clients, the requests, when, and where its logs go."""

    phase: str  # "calibrate" or "flood": names the logs and part of each tag
    target: dict  # {"grpc": "host:port", "http": "http://.../v1/traces"}
    first_client: int  # this process's clients are first_client .. first_client + clients - 1
    clients: int
    total_clients: int
    spans: int  # per request
    attr_bytes: int
    seconds: float  # requests are launched for this long
    retry_window: float  # and retried for this long after
    slots: int = 16  # open loop: requests one client has under way (sent or waiting to retry) at once
    log_dir: str = "."
    # set by the soak when the phase starts (`run`): the same wall-clock start for every process,
    # and the rate in requests/s over all clients (None: closed loop)
    start_at: float = 0.0
    rate: float | None = None

    @property
    def stop_at(self) -> float:
        return self.start_at + self.seconds

    @property
    def give_up_at(self) -> float:
        return self.stop_at + self.retry_window


class Bodies:
    """Serialized requests of `spans` spans for any tag, from one template (a request costs a copy)."""

    def __init__(self, spans: int, attr_bytes: int) -> None:
        self.template = otlp_request(PLACEHOLDER_TAG, spans, attr_bytes=attr_bytes)
        self._placeholder = PLACEHOLDER_TAG.to_bytes(4, "big")
        # each span id, each trace id and each parent id holds the tag once, and nothing else does
        found = self.template.count(self._placeholder)
        if found != 3 * spans - 1:
            raise RuntimeError(f"the request template holds its tag {found} times, not {3 * spans - 1}")

    def body(self, tag: int) -> bytes:
        return self.template.replace(self._placeholder, tag.to_bytes(4, "big"))


def tag_of(phase: str, client: int, seq: int) -> int:
    """The tag of request `seq` (from 1) of `client` in `phase`: 4 bytes, unique over the soak."""
    if not (0 <= client < 256 and 0 < seq < 1 << 20):
        raise ValueError(f"client {client} / request {seq} out of the tag's range")
    return PHASES[phase] << 28 | client << 20 | seq


class Sender:
    """One client's connection: `send(body)` -> (acknowledged, answer name, advised delay or None)."""

    def __init__(self, target: dict, use_grpc: bool) -> None:
        self._grpc = GrpcClient(target["grpc"]) if use_grpc else None
        self._url = target["http"]

    def send(self, body: bytes) -> tuple[bool, str, float | None]:
        try:
            if self._grpc is not None:
                code, trailers = self._grpc.export(body, timeout=30)
                return code.name == "OK", f"grpc {code.name}", _retry_info(trailers.get(RETRY_INFO_KEY))
            status, headers, _ = post_http(self._url, body, timeout=30)
            advice = headers.get("Retry-After")
            return status == 200, f"http {status}", float(advice) if advice else None
        except (OSError, http.client.HTTPException) as exc:  # the server is down (killed), or hung up
            return False, f"down {type(exc).__name__}", None

    def close(self) -> None:
        if self._grpc is not None:
            self._grpc.close()


def _retry_info(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    from google.rpc.error_details_pb2 import RetryInfo

    info = RetryInfo.FromString(raw)
    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9


def _retryable(name: str) -> bool:
    return name.startswith("down") or any(
        s in name for s in (" 429", " 503", "UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"))


class _Client:
    """One client: its sender, its counts and the shared ack log of its process."""

    def __init__(self, plan: Plan, number: int, bodies: Bodies, log, lock: threading.Lock,
                 counts: collections.Counter) -> None:
        self.plan, self.number, self.bodies = plan, number, bodies
        self.sender = Sender(plan.target, use_grpc=number % 2 == 0)
        self.log, self.lock, self.counts = log, lock, counts
        self.rng = random.Random(number)

    def deliver(self, seq: int) -> bool:
        """Send request `seq` until it is acknowledged, retrying as the server advises."""
        tag = tag_of(self.plan.phase, self.number, seq)
        body = self.bodies.body(tag)
        attempt = 0
        while True:
            ok, name, advice = self.sender.send(body)
            with self.lock:
                self.counts[name] += 1
                if ok:
                    self.log.write(f"{tag} {time.time():.3f}\n")
            if ok:
                return True
            if not _retryable(name):
                self._count("refused (not retryable)")
                return False
            if advice is None:
                advice = DOWN_RETRY_S if name.startswith("down") else \
                    min(MAX_BACKOFF_S, 2 ** attempt * self.rng.uniform(0.8, 1.2))
            attempt += 1
            if time.time() + advice > self.plan.give_up_at:
                self._count("requests given up")
                return False
            time.sleep(advice)

    def _count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n


def run(plans: list[Plan], barrier, shared) -> None:
    """A client process: its clients, one phase after another.

    Before each phase it meets the soak at `barrier` twice: once ready (the
    phase before is done), once to go, after the soak has put the phase's start
    time and rate (0: closed loop) in `shared`. Acks go to acked-PHASE-N.log,
    the answers by kind to counts-PHASE-N.json.
    """
    for plan in plans:
        barrier.wait()
        barrier.wait()
        _phase(replace(plan, start_at=shared[0], rate=shared[1] or None))


def _phase(plan: Plan) -> None:
    bodies = Bodies(plan.spans, plan.attr_bytes)
    lock = threading.Lock()
    counts: collections.Counter = collections.Counter()
    name = f"{plan.phase}-{plan.first_client}"
    log = open(Path(plan.log_dir) / f"acked-{name}.log", "a", buffering=1)
    clients = [_Client(plan, plan.first_client + i, bodies, log, lock, counts) for i in range(plan.clients)]
    time.sleep(max(0.0, plan.start_at - time.time()))
    if plan.rate is None:
        _closed_loop(plan, clients)
    else:
        counts.update(_open_loop(plan, clients))
    for client in clients:
        client.sender.close()
    log.close()
    (Path(plan.log_dir) / f"counts-{name}.json").write_text(json.dumps(counts))


def _closed_loop(plan: Plan, clients: list[_Client]) -> None:
    """Each client sends its next request when the last one is acknowledged (or given up)."""
    def loop(client: _Client) -> None:
        seq = 0
        while time.time() < plan.stop_at:
            seq += 1
            client.deliver(seq)

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _open_loop(plan: Plan, clients: list[_Client]) -> collections.Counter:
    """Each client launches a request every `total_clients / rate` seconds, answered or not.

    A client has at most `slots` requests under way (sent, or waiting to be
    sent again); a launch finding them all busy is dropped by the client, as an
    SDK's full export queue drops spans. Late launches (a busy machine) are
    caught up at once, so the offered rate does not follow the server's pace.
    """
    interval = plan.total_clients / plan.rate
    slots = {c.number: threading.BoundedSemaphore(plan.slots) for c in clients}
    pool = futures.ThreadPoolExecutor(max_workers=plan.slots * len(clients))
    stats: collections.Counter = collections.Counter()
    lags: list[float] = []

    def deliver(client: _Client, seq: int) -> None:
        try:
            client.deliver(seq)
        finally:
            slots[client.number].release()

    # clients spread evenly over one interval, each on its own fixed schedule
    heap = [(plan.start_at + interval * c.number / plan.total_clients, i, 1) for i, c in enumerate(clients)]
    heapq.heapify(heap)
    while heap:
        at, i, seq = heapq.heappop(heap)
        if at >= plan.stop_at:
            continue
        now = time.time()
        if at > now:
            time.sleep(at - now)
        else:
            lags.append(now - at)
        client = clients[i]
        stats["requests launched"] += 1
        if slots[client.number].acquire(blocking=False):
            pool.submit(deliver, client, seq)
        else:
            stats[DROPPED] += 1
        heapq.heappush(heap, (at + interval, i, seq + 1))
    pool.shutdown(wait=True)
    stats["launch lag max ms"] = round(1000 * max(lags, default=0.0))
    return stats
