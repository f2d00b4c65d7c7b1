"""The agent's code and git tools over `--repo-path`: halo-engine 0.3.5's names and shapes.

Code tools (any folder): `view_repo_tree`, `glob_files`, `grep_files`, `read_file`.
Git tools (a git work tree only): `git_log`, `git_show`, `git_diff`, `git_blame`,
`git_read_file`. Every agent of the run gets them, subagents included, as in
the reference. Arguments are validated by the models below; a bad argument, a
path outside the root or a bad regex comes back as `{"error": ...}` through
the same path as the trace tools, and a result as `{"result": {...}}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from halo_live.engine.agent.function_tool import error_text, timed_tool
from halo_live.engine.repo.code import GLOB_MAX_RESULTS, GREP_MAX_MATCHES, CodeRepo
from halo_live.engine.repo.git import BLAME_MAX_LINES, LOG_MAX_COMMITS, GitRepo
from halo_live.engine.repo.window import READ_LIMIT_DEFAULT, READ_LIMIT_MAX, READ_OFFSET_DEFAULT


@dataclass(frozen=True)
class Repos:
    """The checkout the tools read: always `code`, `git` when it is a git work tree."""

    code: CodeRepo
    git: GitRepo | None

    @classmethod
    def open(cls, path: str | Path) -> "Repos":
        """ValueError when `path` is missing or not a folder."""
        code = CodeRepo.open(path)
        return cls(code=code, git=GitRepo.open(code))


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ViewRepoTreeArguments(_Args):
    pass


class GlobFilesArguments(_Args):
    pattern: str = Field(description="Glob relative to the repo root: `*.py` matches at any "
                                     "depth, `engine/*.py` is anchored, `**` crosses folders.")
    max_results: int = Field(default=200, ge=1, le=GLOB_MAX_RESULTS)


class GrepFilesArguments(_Args):
    regex_pattern: str = Field(description="Python regular expression, matched per line.")
    glob_pattern: str | None = Field(default=None, description="Only search files matching "
                                     "this glob (as in glob_files), e.g. `engine/**/*.py`.")
    max_matches: int = Field(default=50, ge=1, le=GREP_MAX_MATCHES)


class ReadFileArguments(_Args):
    path: str = Field(description="File path relative to the repo root.")
    offset: int = Field(default=READ_OFFSET_DEFAULT, ge=1, description="1-based first line.")
    limit: int = Field(default=READ_LIMIT_DEFAULT, ge=1, le=READ_LIMIT_MAX,
                       description="How many lines to return.")


class GitLogArguments(_Args):
    max_commits: int = Field(default=50, ge=1, le=LOG_MAX_COMMITS)
    since: str | None = Field(default=None, description="ISO-8601 date or git form (`2 weeks ago`).")
    until: str | None = None
    ref_range: str | None = Field(default=None, description="A ref or an `A..B` range.")
    path: str | None = Field(default=None, description="Only commits touching this path.")
    pickaxe_string: str | None = Field(default=None, description="Commits that changed the "
                                       "number of occurrences of this exact string (-S).")
    pickaxe_regex: str | None = Field(default=None, description="Commits whose diff matches this "
                                      "POSIX extended regex (-G); not with pickaxe_string.")

    @model_validator(mode="after")
    def _one_pickaxe(self) -> "GitLogArguments":
        if self.pickaxe_string is not None and self.pickaxe_regex is not None:
            raise ValueError("pass at most one of pickaxe_string / pickaxe_regex")
        return self


class GitShowArguments(_Args):
    ref: str = Field(description="A commit: sha, short sha, branch, tag, `HEAD~2`.")
    path: str | None = None
    include_patch: bool = False


class GitDiffArguments(_Args):
    from_ref: str
    to_ref: str
    path: str | None = None
    stat_only: bool = True


class GitBlameArguments(_Args):
    path: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1, description=f"Inclusive; at most {BLAME_MAX_LINES} lines per call.")
    ref: str | None = Field(default=None, description="Blame as of this commit (default: the "
                                                      "working tree).")

    @model_validator(mode="after")
    def _ordered(self) -> "GitBlameArguments":
        if self.end_line < self.start_line:
            raise ValueError("end_line must be >= start_line")
        return self


class GitReadFileArguments(_Args):
    ref: str
    path: str
    offset: int = Field(default=READ_OFFSET_DEFAULT, ge=1)
    limit: int = Field(default=READ_LIMIT_DEFAULT, ge=1, le=READ_LIMIT_MAX)


@dataclass(frozen=True)
class RepoTool:
    name: str
    description: str
    arguments: type[BaseModel]
    call: Callable[[Repos, Any], dict[str, Any]]


CODE_TOOLS = (
    RepoTool(
        "view_repo_tree",
        "Directory overview of the code repository (depth and entry capped, .gitignore honoured, "
        "VCS/build/cache folders pruned). Call once for orientation; use glob_files for what the "
        "caps leave out.",
        ViewRepoTreeArguments, lambda r, a: r.code.tree(),
    ),
    RepoTool(
        "glob_files",
        "Find files of the code repository by glob (`*.py` at any depth, `engine/*.py` anchored). "
        "Returns sorted paths with byte sizes. If `has_more`, narrow the pattern.",
        GlobFilesArguments, lambda r, a: r.code.glob(a.pattern, a.max_results),
    ),
    RepoTool(
        "grep_files",
        "Regex-search file contents of the code repository (Python `re`, per line, .gitignore "
        "honoured, binary files skipped). Returns `path`, 1-based `line_number` and `line_text` "
        "per match; `glob_pattern` confines the search. If `has_more`, refine the regex; then "
        "read_file a window around a line.",
        GrepFilesArguments,
        lambda r, a: r.code.grep(a.regex_pattern, a.glob_pattern, a.max_matches),
    ),
    RepoTool(
        "read_file",
        "Read a text file of the code repository as `cat -n` numbered lines, from 1-based "
        "`offset` for `limit` lines; `total_line_count` lets you page, `truncated` flags a "
        "clipped line or response. Cite code as `path:line`.",
        ReadFileArguments, lambda r, a: r.code.read(a.path, a.offset, a.limit),
    ),
)

GIT_TOOLS = (
    RepoTool(
        "git_log",
        "List commits, newest first (read-only): full/short sha, author, ISO-8601 `authored_at`, "
        "subject. `since`/`until` window by date (e.g. a trace's timestamps); `pickaxe_string` "
        "or `pickaxe_regex` find the commits that added or removed a string; `ref_range` and "
        "`path` narrow. If `has_more`, tighten the window.",
        GitLogArguments,
        lambda r, a: r.git.log(max_commits=a.max_commits, since=a.since, until=a.until,
                               ref_range=a.ref_range, path=a.path,
                               pickaxe_string=a.pickaxe_string, pickaxe_regex=a.pickaxe_regex),
    ),
    RepoTool(
        "git_show",
        "One commit (read-only): its metadata and a `--stat` summary, or its (size-capped) patch "
        "with `include_patch=true`; `path` limits it to one file.",
        GitShowArguments,
        lambda r, a: r.git.show(ref=a.ref, path=a.path, include_patch=a.include_patch),
    ),
    RepoTool(
        "git_diff",
        "Diff two revisions (read-only): a `--stat` summary by default, the (size-capped) patch "
        "with `stat_only=false`; `path` limits it to one file.",
        GitDiffArguments,
        lambda r, a: r.git.diff(from_ref=a.from_ref, to_ref=a.to_ref, path=a.path,
                                stat_only=a.stat_only),
    ),
    RepoTool(
        "git_blame",
        "Blame a line range of a file (read-only): the short sha, author and subject of the "
        "commit that last changed each line. Keep the window tight.",
        GitBlameArguments,
        lambda r, a: r.git.blame(path=a.path, start_line=a.start_line, end_line=a.end_line,
                                 ref=a.ref),
    ),
    RepoTool(
        "git_read_file",
        "Read a file as of a commit, numbered like read_file (`offset`/`limit` paging): the code "
        "as it ran when the traces were made, which may differ from the checkout.",
        GitReadFileArguments,
        lambda r, a: r.git.read_at_ref(ref=a.ref, path=a.path, offset=a.offset, limit=a.limit),
    ),
)


def offered(repos: Repos | None) -> tuple[RepoTool, ...]:
    """The tools a run with `repos` offers: none, the code tools, or code and git."""
    if repos is None:
        return ()
    return CODE_TOOLS + (GIT_TOOLS if repos.git is not None else ())


def run_repo_tool(repos: Repos, tool: RepoTool, arguments: str | dict) -> dict[str, Any]:
    """Validate and run one tool: `{"result": ...}` or `{"error": "one readable sentence"}`."""
    try:
        if isinstance(arguments, str):
            args = tool.arguments.model_validate_json(arguments or "{}")
        else:
            args = tool.arguments.model_validate(arguments)
    except ValidationError as exc:
        return {"error": error_text(exc).replace("invalid arguments",
                                                  f"invalid arguments for {tool.name}", 1)}
    try:
        return {"result": tool.call(repos, args)}
    except (ValueError, OSError) as exc:
        return {"error": str(exc)}


def repo_function_tools(runtime, depth: int, repos: Repos | None) -> list:
    """The offered tools as FunctionTools of an agent at `depth` (off the store's thread)."""
    tools = []
    for tool in offered(repos):
        async def body(arguments: str, _tool: RepoTool = tool) -> dict[str, Any]:
            # Not the store's worker: a long grep must not hold up the trace tools.
            return await asyncio.to_thread(run_repo_tool, repos, _tool, arguments)

        tools.append(timed_tool(runtime, depth, tool.name, tool.description,
                                 tool.arguments.model_json_schema(), body))
    return tools
