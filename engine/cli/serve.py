"""`halo serve`: the OTLP endpoint (gRPC + HTTP) writing canonical JSONL, with a live index.

The composition root of the receiving side: one `JsonlWriter` on the output
file (or on this process's own shard in a folder), a `Receiver` shared by the
gRPC and HTTP servers, and an indexer following the dataset, woken by the
writer after each write. SIGTERM/SIGINT stop accepting, let in-flight
requests finish, flush, bring the index up to date and exit 0.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from halo_live.engine.cli import CliError
from halo_live.exporter import config


GRACE_SECONDS = 3.0  # in-flight requests get this long to finish on shutdown

EXAMPLES = """\
  halo serve --out traces/                 OTLP on 127.0.0.1:4317 (gRPC) and :4318 (HTTP), a shard in traces/
  halo serve --out traces.jsonl --grpc-port 0 --http-port 0   free ports (printed at start)
  halo serve --out traces/ --host 0.0.0.0 --token s3cret      reachable from other machines, with auth
then, in the agent's environment (HTTP):
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
or (gRPC):
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc
"""


class _OneLineHttpErrors(logging.Filter):
    """aiohttp logs a malformed request with a full traceback; print one line instead. The
    usual cause is an OTLP/gRPC exporter pointed at the HTTP port."""

    def __init__(self, grpc_port: int) -> None:
        super().__init__()
        self.grpc_port = grpc_port
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        self.seen += 1
        if self.seen in (1, 10, 100, 1000):  # a retrying client must not flood the terminal
            reason = " ".join(" ".join(str(exc).strip().splitlines()[:2]).split())[:100]
            hint = (f"; an OTLP/gRPC client sent to the HTTP port? gRPC listens on {self.grpc_port}"
                    if "PRI" in reason or "HTTP/2" in reason else "")
            print(f"halo serve: rejected a malformed HTTP request ({self.seen} so far): "
                  f"{type(exc).__name__}: {reason}{hint}", file=sys.stderr, flush=True)
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="trace file to append to, or a folder (e.g. traces/) where this "
                             "server writes its own shard traces-serve-<host>-<pid>.jsonl")
    parser.add_argument("--grpc-port", type=int, default=4317,
                        help="OTLP/gRPC port (default 4317; 0 picks a free one)")
    parser.add_argument("--http-port", type=int, default=4318,
                        help="OTLP/HTTP port (default 4318; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--project-id", default=None,
                        help="inference.project_id for spans whose resource sets none "
                             f"(default ${config.HALO_PROJECT_ID})")
    parser.add_argument("--token", default=None,
                        help=f"require 'Authorization: Bearer TOKEN' (default ${config.HALO_TOKEN})")
    parser.add_argument("--fsync", default=None, choices=config.FSYNC_POLICIES,
                        help="sync policy before acknowledging: never (default), batch, always "
                             f"(default ${config.HALO_FSYNC})")
    parser.add_argument("--max-body-mb", type=float, default=16.0,
                        help="largest request accepted, in MB, after decompression (default 16)")
    parser.add_argument("--max-inflight-mb", type=float, default=64.0,
                        help="memory bound: request bytes handled at once; past it a request is "
                             "refused with 429 / UNAVAILABLE and a retry delay (default 64)")
    parser.add_argument("--agent-wait", type=float, default=config.DEFAULT_AGENT_WAIT, metavar="SECONDS",
                        help="hold an LLM/TOOL span up to SECONDS for its agent's span, so its line "
                             "names the agent however the client batches (default "
                             f"{config.DEFAULT_AGENT_WAIT:g}; held spans are journaled first, so a crash "
                             "loses none; 0 never holds)")
    parser.add_argument("--index", default="process", choices=("process", "thread", "none"),
                        help="run the live indexer in a child process (default: parallel to the "
                             "receivers), in a thread of this one, or not at all")
    parser.add_argument("--no-index", dest="index", action="store_const", const="none",
                        help="same as --index none (another process indexes the data)")


def shard_name() -> str:
    """This process's own shard in a folder: one writer per file keeps shards independent."""
    host = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in socket.gethostname())
    return f"traces-serve-{host or 'host'}-{os.getpid()}.jsonl"


def resolve_out(out: str) -> tuple[Path, Path]:
    """(file to write, dataset to index) for `--out`; CliError if unusable."""
    path = Path(out).expanduser()
    if path.is_dir() or out.endswith(("/", os.sep)):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create folder {out}: {exc.strerror or exc}") from None
        target, dataset = path / shard_name(), path
    else:
        if not path.parent.is_dir():
            raise CliError(f"cannot write {out}: folder {path.parent} does not exist")
        if path.is_file():  # append to a trace file, never to something else that is there
            from halo_live.engine.cli.paths import check_jsonl_file

            check_jsonl_file(path, out)
        target, dataset = path, path
    try:  # fail now, in one line, rather than on the first request
        os.close(os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, dataset


def heal_torn_shards(folder: Path, own: Path) -> int:
    """End the torn last line of other servers' shards in `folder`; returns how many.

    A server killed mid-`write()` leaves part of a line that was never acknowledged, and
    no writer will ever finish it: the index would wait for its end forever. Ended, it is
    one bad line. Taken under the writers' flock, so a live server's shard, which holds
    only whole lines between its writes, is never touched.
    """
    healed = 0
    for shard in sorted(folder.glob("traces-serve-*.jsonl")):
        if shard == own:
            continue
        try:
            fd = os.open(shard, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")
                healed += 1
        except OSError:
            pass  # not ours to fix then; the index reports its lag
        finally:
            os.close(fd)  # releases the flock
    return healed


class _ThreadIndex:
    """The live indexer on a thread of this process, woken by the writer after each write."""

    def __init__(self, dataset: Path) -> None:
        from halo_live.indexer import TraceIndex  # imported here: `halo serve --no-index` needs no LMDB

        self.idx = TraceIndex.open(dataset)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.idx.follow, args=(self.stop,),
                                       name="halo-serve-index", daemon=True)

    @property
    def notify(self):
        return self.idx.notify

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.idx.notify()
        self.thread.join(GRACE_SECONDS)
        if self.thread.is_alive():  # a daemon thread: it ends with the process
            print("halo serve: the indexer did not stop in time; `halo index` resumes it",
                  file=sys.stderr)
            return
        self.idx.catch_up()  # everything acknowledged is written: index it all
        self.idx.close()


class _ProcessIndex:
    """The live indexer in a child process: its own GIL, so parsing and LMDB commits run
    beside the receivers instead of between them. It wakes on inotify; it stops when its
    stdin closes (so it also stops if this process dies)."""

    notify = None

    def __init__(self, dataset: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from halo_live.engine.cli.serve import index_child; "
             "sys.exit(index_child(sys.argv[1]))", str(dataset)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(GRACE_SECONDS * 3)
        except subprocess.TimeoutExpired:
            print("halo serve: the indexer did not stop in time; `halo index` resumes it",
                  file=sys.stderr)
            self.proc.kill()
            self.proc.wait()


def index_child(dataset: str) -> int:
    """Body of the indexer child process: follow `dataset` until stdin closes, then catch up."""
    from halo_live.indexer import TraceIndex

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    try:
        idx = TraceIndex.open(dataset)
    except (OSError, ValueError) as exc:
        print(f"halo serve: no live index: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    thread = threading.Thread(target=idx.follow, args=(stop,), daemon=True)
    thread.start()
    sys.stdin.buffer.read()
    stop.set()
    thread.join()
    idx.catch_up()
    idx.close()
    return 0


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # bind errors become our one line instead
    from halo_live.exporter.otlp_logs import logs_path_for
    from halo_live.exporter.receiver import Receiver
    from halo_live.exporter.receiver_grpc import GrpcReceiver
    from halo_live.exporter.receiver_http import HttpReceiver
    from halo_live.exporter.writer import JsonlWriter

    if args.max_body_mb <= 0:
        raise CliError(f"--max-body-mb must be > 0, not {args.max_body_mb}")
    if args.max_inflight_mb <= 0:
        raise CliError(f"--max-inflight-mb must be > 0, not {args.max_inflight_mb}")
    for flag, port in (("--grpc-port", args.grpc_port), ("--http-port", args.http_port)):
        if not 0 <= port <= 65535:
            raise CliError(f"{flag} must be between 0 and 65535, not {port}")
    try:
        project_id = config.setting(args.project_id, config.HALO_PROJECT_ID, config.DEFAULT_PROJECT_ID)
        target, dataset = resolve_out(args.out)
        wake: list = []  # the thread indexer's notify, once it exists
        writer = JsonlWriter(target, fsync=args.fsync,
                             on_flush=lambda _offset: wake[0]() if wake else None)
        receiver = Receiver(writer, project_id=project_id, token=args.token,
                            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                            agent_wait=args.agent_wait, logs_path=logs_path_for(target),
                            max_inflight_bytes=int(args.max_inflight_mb * 1024 * 1024))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    healed = heal_torn_shards(dataset, target) if dataset != target else 0
    index_kind = {"process": _ProcessIndex, "thread": _ThreadIndex}.get(args.index)
    try:
        index = index_kind(dataset) if index_kind else None
    except (OSError, ValueError) as exc:  # e.g. an index folder we cannot create
        writer.shutdown()
        raise CliError(f"cannot index {dataset}: {exc}") from None
    if index is not None and index.notify is not None:
        wake.append(index.notify)

    grpc_server = GrpcReceiver(receiver, args.host, args.grpc_port)
    http_server = HttpReceiver(receiver, args.host, args.http_port, grace=GRACE_SECONDS)
    stop = threading.Event()
    started = []
    try:
        grpc_port = grpc_server.start()
        started.append(grpc_server)
        http_port = http_server.start()
        started.append(http_server)
    except OSError as exc:
        for server in started:
            server.stop(0)
        writer.shutdown()
        if index:
            index.close()
        fixed_ports = args.grpc_port != 0 or args.http_port != 0
        hint = ("; is another server on that port? (--grpc-port 0 / --http-port 0 pick free ones)"
                if fixed_ports and args.host in ("127.0.0.1", "localhost", "0.0.0.0", "::", "::1") else "")
        message = str(exc).split("; set GRPC_VERBOSITY")[0]  # advice for grpc developers, not users
        raise CliError(f"{message}{hint}") from None
    quiet = _OneLineHttpErrors(grpc_port)
    logging.getLogger("aiohttp.server").addFilter(quiet)

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    if index:
        index.start()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"halo serve: writing {target}", flush=True)
    print(f"halo serve: OTLP/gRPC listening on {host}:{grpc_port}", flush=True)
    print(f"halo serve: OTLP/HTTP listening on http://{host}:{http_port}/v1/traces", flush=True)
    print(f"halo serve: OTLP logs too, at http://{host}:{http_port}/v1/logs and on gRPC "
          f"(kept in {logs_path_for(target).name})", flush=True)
    if healed:
        print(f"halo serve: ended the torn last line of {healed} shard(s) a killed server left "
              "(never acknowledged; counted as bad lines)", flush=True)
    if receiver.recovered:
        print(f"halo serve: wrote {receiver.recovered} span(s) a stopped server had left held "
              "for their agent", flush=True)
    if not receiver.token and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"halo serve: warning: listening on {args.host} without --token: anyone who can reach "
              "these ports can write traces", file=sys.stderr, flush=True)
    print("halo serve: ready (" + ("auth on, " if receiver.token else "")
          + ("live index on" if index else "no index") + "); SIGTERM or Ctrl-C stops", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # Stop both servers at once: each refuses new requests and lets in-flight ones finish.
        stopper = threading.Thread(target=grpc_server.stop, args=(GRACE_SECONDS,))
        stopper.start()
        http_server.stop(GRACE_SECONDS)
        stopper.join()
        receiver.close()
        writer.shutdown(GRACE_SECONDS)
        if index:
            index.close()
        logging.getLogger("aiohttp.server").removeFilter(quiet)
    refused = (f", {writer.dropped} line(s) not written (queue full or write failed), "
               "each answered with a retryable error" if writer.dropped else "")
    print(f"halo serve: stopped; {receiver.stats()}{refused}", file=sys.stderr, flush=True)
    return 0
