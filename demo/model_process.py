"""Run the model server as a real separate process (the offline demo's "model provider")."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import Any


class ModelServerProcess:
    """`python -m halo_live.demo.model_server` in a child process; a context manager.

    `policy` is `MODULE:NAME`; with `policy_kwargs`, NAME is a factory called with them
    in the child. `base_url` is known once `start()` returns.
    """

    def __init__(self, policy: str, policy_kwargs: dict[str, Any] | None = None,
                 *, port: int = 0) -> None:
        self.policy = policy
        self.policy_kwargs = policy_kwargs
        self.port = port
        self.base_url = ""
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None

    def start(self) -> "ModelServerProcess":
        cmd = [sys.executable, "-m", "halo_live.demo.model_server", "--port", str(self.port),
               "--policy", self.policy]
        if self.policy_kwargs is not None:
            cmd += ["--policy-kwargs", json.dumps(self.policy_kwargs)]
        # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a
        # child that logs enough into a full pipe would block its event loop.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self._proc.stdout.readline().strip()  # the child prints one line once it listens
        if not line.startswith("listening on "):
            stderr = self._stderr
            self._stderr = None  # kept open through stop(), which reaps the child, to read it after
            self.stop()
            stderr.seek(0)
            err = stderr.read().strip().splitlines()
            stderr.close()
            raise RuntimeError(f"model server did not start: {err[-1] if err else 'no output'}")
        self.base_url = line.split()[-1]
        return self

    def stop(self) -> None:
        """Terminate the child and reap it; safe twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "ModelServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
