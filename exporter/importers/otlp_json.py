"""`halo import otlp-json`: an OpenTelemetry Collector file exporter's output -> canonical lines.

The Collector's `file` exporter writes one OTLP/JSON `ExportTraceServiceRequest`
a line, optionally gzip- or zstd-compressed. Each line goes through the HTTP
receiver's own decoder (`receiver_json.from_json`), so an imported span reads
exactly like one sent to `halo serve`. A line that is not a request is skipped
and counted; the checkpoint is the byte offset of the last whole line used
(in the uncompressed stream), so a re-run continues after it.
"""

from __future__ import annotations

import gzip
import io
import os
import threading
from pathlib import Path
from typing import IO

from halo_live.exporter.importers.resume import ImportFailed, ImportTarget, Progress, no_progress
from halo_live.exporter.otlp_convert import InvalidRequest
from halo_live.exporter.receiver_json import from_json

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BATCH_BYTES = 4 << 20  # lines handed to the writer at once (and checkpointed together)


def _open(path: Path) -> tuple[IO[bytes], str]:
    """The file's uncompressed byte stream and what compression it had."""
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise ImportFailed(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ImportFailed(f"{path} is a folder; give one file of the Collector's file exporter") from None
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw), "gzip"
    if head == _ZSTD_MAGIC:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), "zstd"
    return raw, ""


def _identity(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino]


class OtlpJsonImport:
    """Imports one Collector file into `target`, once or (`follow`) as it grows."""

    def __init__(self, path: str | os.PathLike[str], target: ImportTarget, *, project_id: str = "") -> None:
        self.path = Path(path)
        self.target = target
        self.project_id = project_id
        self.requests = 0

    def run(self, *, follow: bool = False, stop: threading.Event | None = None,
            poll_interval: float = 0.5, progress: Progress = no_progress) -> None:
        """Import every whole line after the checkpoint; with `follow`, keep going until `stop`."""
        stop = stop or threading.Event()
        stream, compression = _open(self.path)
        try:
            state = self.target.state
            offset = int(state.get("offset", 0))
            if state.get("file") != _identity(self.path) or (not compression and offset > self.path.stat().st_size):
                offset = 0  # another file now has this name: read it from the start (ids still dedupe)
            self._skip_to(stream, offset, compression)
            started_at = offset
            total = None if compression else self.path.stat().st_size
            pending = b""
            while True:
                chunk = stream.read(_BATCH_BYTES)
                if chunk:
                    pending += chunk
                    cut = pending.rfind(b"\n") + 1
                    if cut:
                        self._import_block(pending[:cut])
                        offset += cut
                        pending = pending[cut:]
                        self.target.save(file=_identity(self.path), offset=offset, compression=compression)
                        progress(offset, total)
                    continue
                if not follow or compression:
                    break
                if stop.wait(poll_interval):
                    break
            if pending.strip() and not follow:
                if self._whole(pending):  # a last request with no newline after it
                    self._import_block(pending)
                    offset += len(pending)
                    self.target.save(file=_identity(self.path), offset=offset, compression=compression)
                else:  # the exporter had not finished this line: leave it for the next run
                    self.target.stats.skip("a partial last line (left for the next run)")
        finally:
            stream.close()
        nothing_usable = self.requests == 0 and "lines that are not an OTLP/JSON trace request" in self.target.stats.skipped
        if nothing_usable and started_at == 0:
            raise ImportFailed(f"{self.path} holds no OTLP/JSON trace request "
                               f"({self.target.stats.summary(self.target.out).split('; ', 1)[-1]})")

    @staticmethod
    def _skip_to(stream: IO[bytes], offset: int, compression: str) -> None:
        if not offset:
            return
        if not compression:
            stream.seek(offset)
            return
        left = offset
        while left:
            got = stream.read(min(left, 1 << 20))
            if not got:
                raise ImportFailed("the compressed file is shorter than its checkpoint; "
                                   "delete the checkpoint to read it again")
            left -= len(got)

    def _whole(self, line: bytes) -> bool:
        try:
            from_json(line, project_id=self.project_id)
        except InvalidRequest:
            return False
        return True

    def _import_block(self, block: bytes) -> None:
        stats = self.target.stats
        lines: list[bytes] = []
        for raw in io.BytesIO(block):
            if not raw.strip():
                continue
            try:
                conv = from_json(raw, project_id=self.project_id)
            except InvalidRequest as exc:
                stats.skip("lines that are not an OTLP/JSON trace request", 1, _short(str(exc)))
                continue
            self.requests += 1
            if conv.rejected:
                stats.skip("spans rejected by the OTLP decoder", conv.rejected, _short(conv.problems[0]))
            lines.extend(conv.lines)
        self.target.write(lines)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
