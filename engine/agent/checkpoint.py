"""Run folders: every `halo TRACE_PATH -p` run saves its state, so it can resume or go on.

A run folder (`RUNS_DIR/<run id>/state.json`) holds the question, the settings
(never the API key or headers), and the root agent's conversation as of its
last completed turn, rewritten atomically before each root model call. After
Ctrl-C, a crash or a model outage, `--resume RUN` continues from that turn
instead of starting over; once a run is done, `--continue RUN -p ...` asks a
follow-up in its conversation (a new run that names its parent).

Runs live in `--runs-dir`, else `$HALO_RUNS_DIR`, else
`$XDG_STATE_HOME/halo-live/runs` (`~/.local/state/halo-live/runs`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

RUNS_DIR_ENV = "HALO_RUNS_DIR"
STATE_FILE = "state.json"
LAST = "last"  # `--resume last` / `--continue` with no id: the newest run
# Settings that are secrets or belong to the caller's session: never written to disk.
NOT_SAVED = ("api_key", "headers")

RUNNING, DONE, FAILED = "running", "done", "failed"


class RunError(ValueError):
    """A run folder that cannot be found, read or resumed (one line for the CLI)."""


def runs_dir(explicit: str | Path | None = None) -> Path:
    """Where run folders live: the argument, then $HALO_RUNS_DIR, then the XDG state folder."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(RUNS_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(state) / "halo-live" / "runs"


def _plain(value: Any) -> Any:
    """JSON for SDK items that are pydantic objects rather than dicts."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", exclude_unset=True) if callable(dump) else str(value)


@dataclass
class RunState:
    """What `state.json` holds."""

    run_id: str
    trace_path: str
    prompt: str
    settings: dict[str, Any]
    index_dir: str | None = None
    status: str = RUNNING
    turns: int = 0  # root turns completed
    history: list[Any] = field(default_factory=list)  # the root conversation, without nudges
    compacted: dict[str, str] = field(default_factory=dict)  # compaction summaries by call id
    answer: str | None = None
    error: str | None = None
    parent: str | None = None  # the run this one continues
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


class RunFolder:
    """One run's folder; `save()` replaces `state.json` atomically."""

    def __init__(self, path: Path, state: RunState) -> None:
        self.path = path
        self.state = state

    @property
    def run_id(self) -> str:
        return self.state.run_id

    @classmethod
    def create(cls, root: Path, *, trace_path: str, prompt: str, settings: Any,
               index_dir: str | None = None, history: list[Any] | None = None,
               parent: str | None = None) -> "RunFolder":
        """A new run folder under `root`, saved at once (so even a run killed at its first
        call can be resumed)."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        saved = {k: v for k, v in asdict(settings).items() if k not in NOT_SAVED}
        state = RunState(run_id=run_id, trace_path=trace_path, prompt=prompt, settings=saved,
                         index_dir=index_dir, history=list(history or []), parent=parent)
        folder = cls(root / run_id, state)
        try:
            folder.path.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise RunError(f"cannot create the run folder {folder.path}: {exc.strerror or exc}") from exc
        folder.save()
        return folder

    @classmethod
    def load(cls, root: Path, ref: str) -> "RunFolder":
        """The run named by `ref`: an id under `root`, a run folder's path, or "last"."""
        path = Path(ref).expanduser()
        if ref == LAST:
            # the run most recently saved: the one just finished or interrupted
            candidates = list(root.glob(f"*/{STATE_FILE}")) if root.is_dir() else []
            if not candidates:
                raise RunError(f"no runs in {root} yet")
            path = max(candidates, key=lambda p: (p.stat().st_mtime_ns, p.parent.name)).parent
        elif not (path / STATE_FILE).is_file():
            path = root / ref
        try:
            raw = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            known = {f.name for f in fields(RunState)}
            state = RunState(**{k: v for k, v in raw.items() if k in known})
        except FileNotFoundError:
            raise RunError(f"no run {ref!r} in {root}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise RunError(f"cannot read run {ref!r} ({path / STATE_FILE}): {exc}") from exc
        return cls(path, state)

    def save(self) -> None:
        self.state.updated_at = time.time()
        text = json.dumps(asdict(self.state), ensure_ascii=False, default=_plain)
        tmp = self.path / f".{STATE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path / STATE_FILE)

    def checkpoint(self, history: list[Any], turns: int, compacted: dict[str, str]) -> None:
        """The root conversation as of `turns` completed turns (called before each root model call)."""
        self.state.history = list(history)
        self.state.turns = turns
        self.state.compacted = dict(compacted)
        self.state.status = RUNNING
        self.save()

    def finish(self, answer: str, compacted: dict[str, str], turns: int | None = None) -> None:
        """Done: the answer joins the conversation, so a follow-up can build on it."""
        self.state.history = [*self.state.history, {"role": "assistant", "content": answer}]
        if turns is not None:
            self.state.turns = turns
        self.state.answer = answer
        self.state.compacted = dict(compacted)
        self.state.status = DONE
        self.state.error = None
        self.save()

    def fail(self, error: str) -> None:
        """Interrupted or failed: the last checkpoint stays; `--resume` continues from it."""
        self.state.status = FAILED
        self.state.error = error[:2000]
        self.save()

    def follow_up(self, question: str) -> list[Any]:
        """The conversation of this finished run with `question` asked next."""
        if self.state.status != DONE:
            raise RunError(f"run {self.run_id} has not finished ({self.state.status}); "
                           f"resume it first: halo --resume {self.run_id}")
        return [*self.state.history, {"role": "user", "content": question}]
