"""The codebase-helper agent: list/grep/read tools over a repository, and its harness settings.

The harness settings are what a developer changes between runs: the agent's
instructions (do they state the tools' limits? do they say how to recover
from a bad path?) and its turn budget. The benchmark runs this agent.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelSettings, function_tool
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

AGENT_NAME = "codebase-helper"
MAX_READ_LINES = 50  # read_file's default limit; the baseline instructions don't say it
MAX_GREP_HITS = 20
DEFAULT_REAL_MODEL = "gpt-4.1-mini"
OFFLINE_MODEL = "halo-offline-1"

BASE_INSTRUCTIONS = (
    "You are a codebase helper for the repository in your working directory. "
    "Use the tools (list_files, grep, read_file) to find the facts, then answer in one "
    "sentence that names the value and the file it comes from."
)
LIMITS_HINT = "read_file returns at most {n} lines per call: always pass max_lines <= {n}."
RECOVERY_HINT = (
    "If a tool says a path does not exist, do not repeat the call: call list_files with "
    "path '.' to see the layout, then retry with a real path."
)


@dataclass(frozen=True)
class HarnessSettings:
    """What the developer can change between runs."""

    state_limits: bool = False  # the instructions state read_file's line limit
    recovery_hint: bool = False  # the instructions say how to recover from a missing path
    describe_limits: bool = False  # read_file's description states its line limit
    read_limit: int = MAX_READ_LINES  # the most lines read_file accepts per call
    max_turns: int = 8
    api: str = "responses"  # "responses" | "chat"

    def __post_init__(self) -> None:
        if self.api not in ("responses", "chat"):
            raise ValueError(f"api must be 'responses' or 'chat', not {self.api!r}")
        if self.read_limit < 1 or self.max_turns < 1:
            raise ValueError("read_limit and max_turns must be at least 1")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "HarnessSettings":
        """`baseline` (as first written) or `fixed` (limits stated, recovery instructions)."""
        if name not in ("baseline", "fixed"):
            raise ValueError(f"harness preset must be 'baseline' or 'fixed', not {name!r}")
        fixed = name == "fixed"
        return cls(**{"state_limits": fixed, "recovery_hint": fixed, **overrides})

    def instructions(self) -> str:
        parts = [BASE_INSTRUCTIONS]
        if self.state_limits:
            parts.append(LIMITS_HINT.format(n=self.read_limit))
        if self.recovery_hint:
            parts.append(RECOVERY_HINT)
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIXES = {"limits": "state_limits", "recovery": "recovery_hint", "describe-limits": "describe_limits"}


def settings_from(preset: str = "baseline", fixes: list[str] | None = None, **overrides: Any) -> HarnessSettings:
    """Settings from a preset, named fixes (see FIXES) and explicit values (None = keep)."""
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    for fix in fixes or []:
        if fix not in FIXES:
            raise ValueError(f"unknown fix {fix!r} (known: {', '.join(FIXES)})")
        values[FIXES[fix]] = True
    return HarnessSettings.preset(preset, **values)


def _inside(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise PermissionError(f"path escapes the repository: {rel}")
    return target


def tool_error_text(ctx: Any, error: Exception) -> str:
    """What the model (and the trace) sees when a tool raises: the error, not a generic line."""
    return f"error: {type(error).__name__}: {error}"


def make_tools(root: str | Path, settings: HarnessSettings | None = None) -> list:
    """The three tools over the repository at `root`; they raise on bad input, as real tools do."""
    root = Path(root).resolve()
    settings = settings or HarnessSettings()
    limit = settings.read_limit

    def files_under(path: str) -> list[Path]:
        base = _inside(root, path)
        if not base.is_dir():
            raise FileNotFoundError(f"no such directory: {path}")
        return sorted(p for p in base.rglob("*") if p.is_file())

    @function_tool(failure_error_function=tool_error_text)
    def list_files(path: str = ".") -> str:
        """List the files under a directory of the repository.

        Args:
            path: a directory relative to the repository root.
        """
        return "\n".join(str(p.relative_to(root)) for p in files_under(path))

    @function_tool(failure_error_function=tool_error_text)
    def grep(pattern: str, path: str = ".") -> str:
        """Search files for a regular expression; prints `file:line: text` for each hit.

        Args:
            pattern: a Python regular expression.
            path: the directory to search, relative to the repository root.
        """
        regex = re.compile(pattern)
        hits = []
        for file in files_under(path):
            for number, line in enumerate(file.read_text().splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{file.relative_to(root)}:{number}: {line.strip()}")
                    if len(hits) >= MAX_GREP_HITS:
                        return "\n".join(hits)
        return "\n".join(hits) or "no matches"

    @function_tool(failure_error_function=tool_error_text)
    def read_file(path: str, start_line: int = 1, max_lines: int = 20) -> str:
        """Read lines of a file, numbered.

        Args:
            path: a file relative to the repository root.
            start_line: the first line to read (1-based).
            max_lines: how many lines to read.
        """
        if max_lines > limit or max_lines < 1:
            raise ValueError("max_lines out of range")  # terse, as the first version of a tool is
        target = _inside(root, path)
        if not target.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        lines = target.read_text().splitlines()
        first = max(1, start_line)
        window = lines[first - 1:first - 1 + max_lines]
        return "\n".join(f"{first + i}: {text}" for i, text in enumerate(window))

    if settings.describe_limits:
        read_file.description += f" Returns at most {limit} lines per call (max_lines <= {limit})."
    return [list_files, grep, read_file]


@asynccontextmanager
async def open_model(settings: HarnessSettings, base_url: str | None = None,
                     model: str | None = None) -> AsyncIterator[Model]:
    """The agent's model, its client closed on exit: the offline server at `base_url`, else OpenAI."""
    if base_url:
        client = AsyncOpenAI(base_url=base_url, api_key="offline", max_retries=2)
        name = model or OFFLINE_MODEL
    else:
        client = AsyncOpenAI()  # OPENAI_API_KEY / OPENAI_BASE_URL from the environment
        name = model or os.environ.get("HALO_DEMO_MODEL", DEFAULT_REAL_MODEL)
    try:
        if settings.api == "chat":
            yield OpenAIChatCompletionsModel(model=name, openai_client=client)
        else:
            yield OpenAIResponsesModel(model=name, openai_client=client)
    finally:
        await client.close()


def build_agent(settings: HarnessSettings, model, root: str | Path) -> Agent:
    """The codebase-helper agent for `settings`, browsing the repository at `root`."""
    return Agent(
        name=AGENT_NAME,
        instructions=settings.instructions(),
        tools=make_tools(root, settings),
        model=model,
        # Without this the SDK asks a non-OpenAI endpoint for no usage on streamed chat.
        model_settings=ModelSettings(include_usage=True),
    )
