"""Read-only git history of a checkout for the agent's git tools.

    git = GitRepo.open("path/to/harness")    # None when the folder is not a git work tree
    git.log(max_commits=20, path="engine/agent/ask.py"); git.show(ref="HEAD")
    git.diff(from_ref="HEAD~3", to_ref="HEAD"); git.blame(path=..., start_line=1, end_line=40)
    git.read_at_ref(ref="HEAD~1", path="engine/agent/ask.py", offset=1, limit=200)

The tools, arguments and result shapes of halo-engine 0.3.5. Every call is a
fixed read-only subcommand run as `git -C ROOT --no-pager` with a timeout and a
byte cap on what is read back. The model's values only reach git where they
cannot become options: revisions are refused when they start with `-` and sit
after `--end-of-options`, paths are confined to the root and sit after `--`,
and `-S`/`-G` values are glued to their flag. External diff drivers and
textconv filters are off, so a repo's config cannot make a read run a program.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from typing import Any

from halo_live.engine.repo.code import CodeRepo, confine, git_argv, git_env
from halo_live.engine.repo.window import BINARY_SNIFF_BYTES, RESPONSE_CHAR_BUDGET, cap_text, render_window

GIT_TIMEOUT_SECONDS = 30.0
# Bytes read back from git at most; beyond it the child is killed and `truncated` set.
OUTPUT_BYTE_CAP = 4 * RESPONSE_CHAR_BUDGET
LOG_MAX_COMMITS = 500
BLAME_MAX_LINES = 2000
SUBJECT_CHAR_CAP = 500
BLAME_LINE_CHAR_CAP = 500
SHORT_SHA_LEN = 12  # fixed, so log, show and blame print the same abbreviation
_SEP = "\x1f"  # never in commit metadata: one commit parses from one line
LOG_FORMAT = _SEP.join(["%H", "%an", "%aI", "%s"])
_READ_ONLY = frozenset({"log", "show", "diff", "blame", "rev-parse"})


class GitError(ValueError):
    """git refused the request (bad revision, unknown path); the message is git's."""


def _revision(value: str, what: str = "ref") -> str:
    """Refuse a revision git could read as an option, or as `REV:PATH` outside the root."""
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if value.startswith("-"):
        raise ValueError(f"invalid {what} {value!r}: a revision cannot start with '-'")
    if ":" in value or "\x00" in value:
        raise ValueError(f"invalid {what} {value!r}: use git_read_file to read a file at a revision")
    return value


class GitRepo:
    """log / show / diff / blame / read-file-at-revision over one work tree; never writes."""

    def __init__(self, code: CodeRepo) -> None:
        self.code = code
        self.root = code.root

    @classmethod
    def open(cls, path: str | os.PathLike[str] | CodeRepo) -> "GitRepo | None":
        """The git view of a folder (or an opened CodeRepo), or None when it is not in a
        git work tree or git is missing; ValueError when the folder is missing."""
        code = path if isinstance(path, CodeRepo) else CodeRepo.open(path)
        return cls(code) if code.use_git else None

    # --- running git ------------------------------------------------------------------

    def _run(self, args: list[str], *, cap: int = OUTPUT_BYTE_CAP) -> tuple[str, bool]:
        """stdout of a read-only git command (at most `cap` bytes) and whether it was cut.

        A non-zero exit raises GitError with git's first line of complaint.
        """
        assert args[0] in _READ_ONLY, args[0]
        argv = git_argv(self.root, "--no-pager", *args)
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                    stdin=subprocess.DEVNULL, env=git_env())
            timer = threading.Timer(GIT_TIMEOUT_SECONDS, proc.kill)
            timer.start()
            try:
                data = proc.stdout.read(cap + 1)
                cut = len(data) > cap
                if cut:
                    proc.kill()
                proc.stdout.close()
                code = proc.wait()
            finally:
                timer.cancel()
            if code != 0 and not cut:
                if code < 0:
                    raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS:.0f} s "
                                   "and was stopped; narrow the request")
                err.seek(0)
                lines = err.read(4000).decode("utf-8", "replace").strip().splitlines()
                message = next((l for l in lines if l.startswith(("fatal", "error"))),
                               lines[0] if lines else f"exit status {code}")
                raise GitError(f"git {args[0]} failed: {message}")
        text = data[:cap].decode("utf-8", errors="replace")
        return text, cut

    def _rel(self, path: str) -> str:
        resolved = confine(self.root, path)
        return resolved.relative_to(self.root).as_posix() or "."

    def _has_commits(self) -> bool:
        try:
            self._run(["rev-parse", "--verify", "--quiet", "HEAD"])
        except GitError:
            return False
        return True

    # --- the tools ----------------------------------------------------------------------

    def log(self, *, max_commits: int = 50, since: str | None = None, until: str | None = None,
            ref_range: str | None = None, path: str | None = None,
            pickaxe_string: str | None = None, pickaxe_regex: str | None = None) -> dict[str, Any]:
        """`{commits: [commit], returned_count, has_more}`, newest first."""
        args = ["log", "--no-color", "--no-ext-diff", "--no-textconv", "-n",
                str(min(max_commits, LOG_MAX_COMMITS) + 1), f"--format={LOG_FORMAT}"]
        if since:
            args.append(f"--since={since}")
        if until:
            args.append(f"--until={until}")
        if pickaxe_string is not None and pickaxe_regex is not None:
            raise ValueError("pass at most one of pickaxe_string / pickaxe_regex")
        if pickaxe_string is not None:
            args.append(f"-S{pickaxe_string}")
        if pickaxe_regex is not None:
            args += ["-E", f"-G{pickaxe_regex}"]
        args.append("--end-of-options")
        if ref_range:
            args.append(_revision(ref_range, "ref_range"))
        if path is not None:
            args += ["--", self._rel(path)]
        try:
            text, _ = self._run(args)
        except GitError:
            if not self._has_commits():  # an unborn HEAD is an empty history, not a failure
                return {"commits": [], "returned_count": 0, "has_more": False}
            raise
        commits = [c for c in map(_commit, text.splitlines()) if c is not None]
        has_more = len(commits) > max_commits
        commits = commits[:max_commits]
        return {"commits": commits, "returned_count": len(commits), "has_more": has_more}

    def show(self, *, ref: str, path: str | None = None,
             include_patch: bool = False) -> dict[str, Any]:
        """`{commit, body, truncated}`: the commit and its `--stat`, or its patch."""
        args = ["show", "--no-color", "--no-ext-diff", "--no-textconv", "-n", "1",
                f"--format={LOG_FORMAT}"]
        if not include_patch:
            args.append("--stat")
        args += ["--end-of-options", _revision(ref)]
        if path is not None:
            args += ["--", self._rel(path)]
        text, cut = self._run(args)
        head, _, body = text.partition("\n")
        commit = _commit(head)
        if commit is None and path is not None and not text.strip():
            raise GitError(f"commit {ref!r} does not change {path!r}; drop `path`, or find the "
                           "commits that do with git_log and `path`")
        if commit is None:
            raise GitError(f"{ref!r} is not a commit")
        body, clipped = _clip(body.lstrip("\n"))
        return {"commit": commit, "body": body.rstrip("\n"), "truncated": cut or clipped}

    def diff(self, *, from_ref: str, to_ref: str, path: str | None = None,
             stat_only: bool = True) -> dict[str, Any]:
        """`{diff, stat_only, truncated}` between two revisions."""
        args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv"]
        if stat_only:
            args.append("--stat")
        args += ["--end-of-options",
                 f"{_revision(from_ref, 'from_ref')}..{_revision(to_ref, 'to_ref')}"]
        if path is not None:
            args += ["--", self._rel(path)]
        text, cut = self._run(args)
        text, clipped = _clip(text)
        return {"diff": text.rstrip("\n"), "stat_only": stat_only, "truncated": cut or clipped}

    def blame(self, *, path: str, start_line: int, end_line: int,
              ref: str | None = None) -> dict[str, Any]:
        """`{path, lines: [{line_number, short_sha, author, summary, line_text}], returned_count,
        truncated}`; a window over BLAME_MAX_LINES is clamped."""
        if end_line < start_line:
            raise ValueError("end_line must be >= start_line")
        rel = self._rel(path)
        truncated = end_line - start_line + 1 > BLAME_MAX_LINES
        if truncated:
            end_line = start_line + BLAME_MAX_LINES - 1
        # `git blame` has no --end-of-options: _revision's leading-dash check guards the rev.
        args = ["blame", "--no-textconv", "--line-porcelain", "-L", f"{start_line},{end_line}"]
        if ref is not None:
            args.append(_revision(ref))
        text, cut = self._run([*args, "--", rel])
        lines = _parse_blame(text)
        return {"path": rel, "lines": lines, "returned_count": len(lines),
                "truncated": truncated or cut}

    def read_at_ref(self, *, ref: str, path: str, offset: int = 1,
                    limit: int = 500) -> dict[str, Any]:
        """The file as of `ref`, as `read_file` renders it (numbered window)."""
        rel = self._rel(path)
        # `./` makes the path relative to ROOT, which may be a folder inside the work tree.
        text, cut = self._run(["show", "--no-textconv", "--end-of-options",
                               f"{_revision(ref)}:./{rel}"], cap=RESPONSE_CHAR_BUDGET * 20)
        if "\x00" in text[:BINARY_SNIFF_BYTES]:
            raise ValueError(f"binary file: {path!r}; git_read_file only reads text files")
        body = text[:-1] if text.endswith("\n") else text
        lines = ((line[:-1] if line.endswith("\r") else line, None)
                 for line in (body.split("\n") if text else []))
        result = render_window(lines, path=rel, offset=offset, limit=limit)
        if cut:  # the blob was bigger than we read back: the count is a floor
            result["total_line_count_is_lower_bound"] = True
        return result


def _clip(text: str) -> tuple[str, bool]:
    if len(text) <= RESPONSE_CHAR_BUDGET:
        return text, False
    return text[:RESPONSE_CHAR_BUDGET], True


def _commit(line: str) -> dict[str, str] | None:
    fields = line.rstrip("\n").split(_SEP)
    if len(fields) != 4:
        return None
    sha, author, when, subject = fields
    return {"full_sha": sha, "short_sha": sha[:SHORT_SHA_LEN], "author": author,
            "authored_at": when[:-1] + "+00:00" if when.endswith("Z") else when,
            "subject": cap_text(subject, SUBJECT_CHAR_CAP)[0]}


def _parse_blame(text: str) -> list[dict[str, Any]]:
    """`--line-porcelain` records: a header `SHA ORIG FINAL [N]`, `key value` lines, a tab line."""
    out: list[dict[str, Any]] = []
    sha, final, author, summary = None, 0, "", ""
    for line in text.split("\n"):
        if line.startswith("\t"):
            if sha is not None:
                out.append({"line_number": final, "short_sha": sha[:SHORT_SHA_LEN],
                            "author": author, "summary": cap_text(summary, SUBJECT_CHAR_CAP)[0],
                            "line_text": cap_text(line[1:], BLAME_LINE_CHAR_CAP)[0]})
            sha = None
            continue
        parts = line.split(" ")
        if len(parts) >= 3 and len(parts[0]) in (40, 64) and parts[2].isdigit() and sha is None:
            sha, final = parts[0], int(parts[2])
        elif line.startswith("author "):
            author = line[7:]
        elif line.startswith("summary "):
            summary = line[8:]
    return out
