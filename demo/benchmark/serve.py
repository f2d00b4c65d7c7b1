"""`halo serve` as a child process: the OTLP endpoint the benchmark's workers export to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HTTP_READY = "OTLP/HTTP listening on "


class HaloServeProcess:
    """`halo serve --out FOLDER/` on free ports; `endpoint` is its OTLP/HTTP traces URL."""

    def __init__(self, out: Path, log: Path) -> None:
        self.out = out
        self.log = log
        self.endpoint = ""
        self._proc: subprocess.Popen | None = None

    def start(self) -> "HaloServeProcess":
        # The demo's live view catches the index up itself: no second indexer competing for 2 cores.
        cmd = [sys.executable, "-m", "halo_live", "serve", "--out", f"{self.out}/", "--grpc-port", "0",
               "--http-port", "0", "--index", "none"]
        self._log = self.log.open("w")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True)
        for line in self._proc.stdout:
            if HTTP_READY in line:
                self.endpoint = line.split(HTTP_READY, 1)[1].strip()
            if "ready" in line:
                break
        if not self.endpoint:
            self.stop()
            raise RuntimeError(f"halo serve did not start; see {self.log}")
        return self

    def stop(self) -> int | None:
        """SIGTERM: the server flushes what it acknowledged and exits; safe twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        self._log.close()
        return proc.returncode
