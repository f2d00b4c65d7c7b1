"""Environment variables of the producers, their defaults, and the lookup rule.

Configuration follows the OTel SDK: an explicit argument wins, then the
environment variable, then the default. A value that does not parse is
rejected with a `ValueError` that names the setting, at construction time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# --- names -----------------------------------------------------------------------
HALO_TRACES_PATH = "HALO_TRACES_PATH"
HALO_PROJECT_ID = "HALO_PROJECT_ID"
HALO_RUN_ID = "HALO_RUN_ID"
HALO_SERVICE_NAME = "HALO_SERVICE_NAME"
HALO_FSYNC = "HALO_FSYNC"
HALO_TOKEN = "HALO_TOKEN"  # bearer token the OTLP receiver requires, if set
HALO_MAX_QUEUE_LINES = "HALO_MAX_QUEUE_LINES"
HALO_FLUSH_INTERVAL = "HALO_FLUSH_INTERVAL"
HALO_INDEX_NATIVE = "HALO_INDEX_NATIVE"  # "0": index with the pure-Python parse, not halo_live.indexer._scan

# --- defaults ----------------------------------------------------------------------
DEFAULT_TRACES_PATH = "./traces.jsonl"
DEFAULT_PROJECT_ID = ""
DEFAULT_SERVICE_NAME = "halo-agent"
DEFAULT_FSYNC = "never"
DEFAULT_MAX_QUEUE_LINES = 100_000
DEFAULT_FLUSH_INTERVAL = 0.2  # seconds between background flushes
DEFAULT_BLOCK_TIMEOUT = 0.5  # seconds a full queue may block the caller before dropping
DEFAULT_AGENT_WAIT = 30.0  # seconds an LLM/TOOL span may be held for its agent's span (lineage)

FSYNC_POLICIES = ("never", "batch", "always")


def setting(arg: T | None, env_name: str, default: T, parse: Callable[[str], T] = str) -> T:  # type: ignore[assignment]
    """`arg` if given, else `$env_name` parsed with `parse`, else `default`.

    A bad environment value raises `ValueError` naming the variable.
    """
    if arg is not None:
        return arg
    raw = os.environ.get(env_name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{env_name}={raw!r} is not valid: {exc}") from None


def checked(name: str, arg: Any, env_name: str | None, default: Any, parse: Callable[[Any], T]) -> T:
    """`setting`, with a given `arg` checked by `parse` too (a `ValueError` naming `name`)."""
    if arg is None:
        return setting(None, env_name, default, parse) if env_name else default
    try:
        return parse(arg)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def parse_fsync(value: Any) -> str:
    """An fsync policy name ("never" | "batch" | "always"); booleans map to never/batch."""
    if isinstance(value, bool):
        return "batch" if value else "never"
    text = str(value).strip().lower()
    aliases = {"0": "never", "false": "never", "no": "never", "off": "never",
               "1": "batch", "true": "batch", "yes": "batch", "on": "batch"}
    text = aliases.get(text, text)
    if text not in FSYNC_POLICIES:
        raise ValueError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}, not {value!r}")
    return text


def positive_float(value: Any) -> float:
    """A float > 0 (from a string or a number)."""
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be > 0, not {value!r}")
    return number


def positive_int(value: Any) -> int:
    """An int > 0 (from a string or a number)."""
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be > 0, not {value!r}")
    return number


def traces_path(path: str | os.PathLike[str] | None = None) -> str:
    """The trace file: `path`, else `$HALO_TRACES_PATH`, else `./traces.jsonl`."""
    return os.fspath(setting(path, HALO_TRACES_PATH, DEFAULT_TRACES_PATH))
