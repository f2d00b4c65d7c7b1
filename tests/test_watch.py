"""`halo watch`: one frame as JSON while another process appends, waiting for a path, idle
files, and the live view in a real terminal (tmux) following a worker that is then killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from halo_live.demo.model_server import ModelServer, Reply
from halo_live.engine.watch import Watcher
from tests import _tools_helpers as gen
from tests.test_open_spans import WORKER

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 60.0
STATES = ("complete", "running", "stuck", "abandoned")


def halo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "halo_live", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def frame_of(path: Path, *extra: str) -> dict:
    done = halo("watch", str(path), "--once", "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_once_json_while_another_process_appends_only_grows(tmp_path):
    path = tmp_path / "traces.jsonl"
    lines = gen.generate(120, seed=3, incomplete_every=9)
    source = tmp_path / "lines.bin"
    source.write_bytes(b"".join(lines))
    appender = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        lines = open(sys.argv[1], "rb").read().splitlines(keepends=True)
        with open(sys.argv[2], "ab") as out:
            for i in range(0, len(lines), 20):
                out.write(b"".join(lines[i:i + 20])); out.flush(); time.sleep(0.2)
    """), str(source), str(path)])
    frames = []
    try:
        while appender.poll() is None or len(frames) < 3:
            if path.exists():
                frames.append(frame_of(path))
            else:
                time.sleep(0.05)
    finally:
        appender.wait(DEADLINE)
    frames.append(frame_of(path))
    for frame in frames:
        t = frame["traces"]
        assert sum(t[s] for s in STATES) == t["total"]
        assert frame["status"] in ("live", "idle")
    for key in ("total", "complete"):
        seen = [f["traces"][key] for f in frames]
        assert seen == sorted(seen), (key, seen)
    spans = [f["spans"] for f in frames]
    assert spans == sorted(spans) and spans[-1] == len(lines)
    assert len(set(spans)) >= 2  # some frames were taken while the file grew
    assert frames[-1]["traces"]["total"] == 120


def test_a_missing_path_is_waited_for_not_an_error(tmp_path):
    frame = frame_of(tmp_path / "later" / "traces.jsonl")
    assert frame["status"] == "waiting" and frame["traces"]["total"] == 0
    shown = halo("watch", str(tmp_path / "later.jsonl"), "--once")
    assert shown.returncode == 0 and "waiting for" in shown.stdout and "to appear" in shown.stdout


def test_a_file_that_stopped_growing_is_idle(tmp_path):
    path = gen.write(tmp_path / "traces.jsonl", gen.generate(10, seed=1))
    old = time.time() - 3600
    os.utime(path, (old, old))
    frame = frame_of(path, "--expect", "20")
    assert frame["status"] == "idle" and frame["idle_seconds"] >= 3599
    assert frame["traces"]["complete"] == 10 and frame["expect"]["done"] == 10
    shown = halo("watch", str(path), "--once")
    assert shown.returncode == 0 and "idle" in shown.stdout and "stopped growing" in shown.stdout


@pytest.mark.parametrize("bad", [["--stuck-after", "0"], ["--stuck-after", "soon"], ["--expect", "0"]])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, bad):
    done = halo("watch", str(tmp_path), "--once", *bad)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_frame_counts_running_and_unwritten_tasks_and_gives_an_eta(tmp_path):
    path = gen.write(tmp_path / "traces.jsonl", gen.generate(4, seed=2))
    now = time.time()
    Path(f"{path}.halo-open-{os.uname().nodename}-{os.getpid()}.json").write_text(json.dumps({
        "format": "halo-live-open/1", "pid": os.getpid(), "host": os.uname().nodename, "updated_at": now,
        "interval": 1.0, "service": "svc", "project_id": "p",
        "traces": [{"trace_id": "e" * 32, "name": "t", "started_at": now - 5, "last_activity": now - 2,
                    "spans": [{"span_id": "b" * 16, "parent_span_id": "", "name": "function.grep",
                               "kind": "TOOL", "agent": "a", "model": None, "started_at": now - 2}]}]}))
    with Watcher(path, expect=10) as watcher:
        frame = watcher.frame(now)
    assert frame["traces"] == {"total": 5, "complete": 4, "running": 1, "stuck": 0, "abandoned": 0,
                               "unwritten": 1}
    task = frame["open_tasks"][0]
    assert (task["doing"], task["for_seconds"], task["silent_seconds"]) == ("tool `grep`", 2, 2)
    assert task["current_span"]["kind"] == "TOOL" and task["state"] == "running"
    assert frame["expect"]["done"] == 4 and frame["expect"]["eta_seconds"] is not None


# --- the view in a real terminal ----------------------------------------------------------

tmux_missing = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One tmux server of our own (its own socket), one pane running a command."""

    def __init__(self, command: str) -> None:
        self.socket = f"halo-watch-test-{os.getpid()}"
        self._tmux("new-session", "-d", "-s", "w", "-x", "120", "-y", "45", command)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "w")

    def wait_for(self, *texts: str) -> str:
        end = time.monotonic() + DEADLINE
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > end:
                size = self._tmux("display", "-p", "-t", "w", "#{pane_width}x#{pane_height}")
                raise AssertionError(f"never saw {texts} on the {size.strip()} screen:\n{screen}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "w", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@tmux_missing
def test_the_view_in_a_terminal_waits_follows_a_worker_and_shows_it_abandoned(tmp_path):
    path = tmp_path / "run" / "traces.jsonl"
    release = threading.Event()

    def held(turn) -> Reply:
        release.wait(DEADLINE)
        return Reply(text="late")

    # (a detached tmux may hand its panes COLUMNS=80: unset it, as a real terminal has it)
    command = (f"cd {ROOT} && env -u COLUMNS -u LINES {sys.executable} -m halo_live watch {path} --stuck-after 600; "
               "echo WATCH-EXIT=$?; sleep 60")
    term = Tmux(command)
    worker = None
    try:
        term.wait_for("waiting", "to appear")
        with ModelServer(held) as server:
            worker = subprocess.Popen([sys.executable, "-c", WORKER, str(path), server.base_url], cwd=ROOT)
            screen = term.wait_for("1 running", "LLM call to held-model for", "Ctrl-C to exit")
            assert "live" in screen and "0 abandoned" in screen
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(DEADLINE)
            screen = term.wait_for("1 abandoned", f"process {worker.pid} is gone")
            assert "0 running" in screen
            release.set()
        term.keys("C-c")
        screen = term.wait_for("WATCH-EXIT=0")
        assert "Traceback" not in screen and "1 abandoned" in screen  # the last frame stays
    finally:
        release.set()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(DEADLINE)
        term.close()


def test_json_streams_a_frame_per_refresh_until_ctrl_c(tmp_path):
    path = gen.write(tmp_path / "traces.jsonl", gen.generate(5, seed=4))
    watch = subprocess.Popen([sys.executable, "-m", "halo_live", "watch", str(path), "--json", "--interval", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        frames = [json.loads(watch.stdout.readline()) for _ in range(3)]
        assert all(f["traces"]["complete"] == 5 and f["spans"] == frames[0]["spans"] for f in frames)
        assert frames[-1]["rates"] is not None  # measured between frames
    finally:
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=DEADLINE)
    assert watch.returncode == 0 and "Traceback" not in err


def test_a_folder_without_shards_yet_is_waiting_then_live(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    with Watcher(folder) as watcher:
        assert (watcher.frame()["status"], watcher.frame()["waiting_for"]) == ("waiting", "files")
        gen.write(folder / "traces-w0.jsonl", gen.generate(3, seed=6))
        frame = watcher.frame()
    assert frame["status"] == "live" and frame["traces"]["complete"] == 3
