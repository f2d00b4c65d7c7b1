"""A read-only view of a source checkout for the agent's code tools, in pure Python.

    repo = CodeRepo.open("path/to/harness")      # ValueError if missing or not a folder
    repo.tree(); repo.glob("*.py", 200); repo.grep(r"def run", "engine/*.py", 50)
    repo.read("engine/agent/ask.py", offset=1, limit=500)

Names, arguments, result shapes and caps follow halo-engine 0.3.5's code tools,
without ripgrep: the file list comes from `git ls-files` in a git work tree
(so .gitignore is honoured) and from a pruned `os.walk` elsewhere. Every path
stays inside the root; every call is bounded in files, bytes and time. A bad
argument raises ValueError with a sentence the model can act on.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import regex

from halo_live.engine.bounded_regex import BoundedRegex
from halo_live.engine.repo.window import (
    BINARY_SNIFF_BYTES,
    READ_LIMIT_DEFAULT,
    READ_OFFSET_DEFAULT,
    byte_lines,
    cap_text,
    render_window,
)

# The reference's caps (engine/code/_limits.py and code_repo.py of halo-engine 0.3.5).
GREP_LINE_CHAR_CAP = 500
TREE_MAX_DEPTH = 4
TREE_MAX_ENTRIES = 500
TREE_MAX_PATHS = 10_000
GLOB_MAX_RESULTS = 1000
GREP_MAX_MATCHES = 500

# Our own bounds, so a huge checkout cannot stall the agent (ripgrep is fast enough
# not to need them; a Python scan is not).
MAX_LISTED_FILES = 200_000
LIST_TIMEOUT_SECONDS = 20.0
GREP_MAX_FILE_BYTES = 4 * 1024 * 1024  # bigger files are generated or data, rarely code
GREP_MAX_SCAN_BYTES = 256 * 1024 * 1024
GREP_MAX_SECONDS = 15.0

# Never listed: VCS metadata, dependency trees, caches, our own index folders.
PRUNED_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".cache", ".tox", ".eggs", ".nox",
})
PRUNED_SUFFIXES = (".egg-info", ".halo-index")
# Without git there is no .gitignore to say what is built output; prune the usual names.
WALK_PRUNED_DIRS = PRUNED_DIRS | {"build", "dist"}
# Variables that would point git at another repository than the one at `-C root`.
GIT_REDIRECT_ENV = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
})


def git_argv(root: Path, *args: str) -> list[str]:
    """`git ARGS` on `root` with no fsmonitor hook (a program the repo's config names, which a
    read must not start)."""
    return ["git", "-c", "core.fsmonitor=false", "-C", str(root), *args]


def git_env() -> dict[str, str]:
    """The environment for a read-only git child: no redirects, no prompts, no lock writes."""
    env = {k: v for k, v in os.environ.items() if k not in GIT_REDIRECT_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return env


def confine(root: Path, path: str) -> Path:
    """`path` (relative to `root`) resolved inside `root`, or ValueError.

    Absolute paths are refused outright, and `resolve()` follows symlinks before
    the check, so neither `..` nor a link can lead out of the checkout.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError("path is empty; pass a path relative to the repo root")
    if "\x00" in path:
        raise ValueError("path contains a NUL byte")
    candidate = Path(path)
    if candidate.is_absolute():
        raise ValueError(f"path {path!r} is absolute; pass a path relative to the repo root")
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"path {path!r} leads outside the repo root; pass a path inside it")
    return resolved


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A gitignore-style glob as a regex over repo-relative POSIX paths.

    `*` and `?` stay within one folder, `**` crosses folders, `[...]` is a class.
    A pattern without `/` matches a name at any depth (`*.py`); one with `/` is
    anchored at the root (`engine/*.py`); a trailing `/` matches everything below.
    """
    pat = pattern.strip()
    if not pat:
        raise ValueError("empty glob pattern")
    if pat.endswith("/"):
        pat += "**"
    anchored = "/" in pat.rstrip("/")
    pat = pat.lstrip("/")
    out, i = [], 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and _class_end(pat, i) > 0:
            end = _class_end(pat, i)
            body = pat[i + 1:end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    try:
        return re.compile(prefix + "".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ValueError(f"invalid glob pattern {pattern!r}: {exc}") from exc


def _class_end(pat: str, i: int) -> int:
    """Index of the `]` closing the class opened at `i`, or -1 (then `[` is literal)."""
    j = i + 1
    if pat[j:j + 1] in ("!", "^"):
        j += 1
    if pat[j:j + 1] == "]":  # a leading `]` is a member, not the end
        j += 1
    return pat.find("]", j)


def _is_binary(head: bytes) -> bool:
    return b"\x00" in head[:BINARY_SNIFF_BYTES]


class CodeRepo:
    """Read-only access to one checkout: `tree`, `glob`, `grep`, `read`.

    Symlinks are never listed or searched (as ripgrep, which does not follow
    them); `read` resolves them and refuses any that lead out of the root.
    """

    def __init__(self, root: Path, *, use_git: bool) -> None:
        self.root = root
        self.use_git = use_git
        self._tree: str | None = None
        self._files: tuple[list[str], bool] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "CodeRepo":
        """Validate and resolve `path`; ValueError when it is missing or not a folder."""
        if not str(path).strip():
            raise ValueError("repo path is empty; give the folder of the harness's source")
        raw = Path(path).expanduser()
        if not raw.exists():
            raise ValueError(f"repo path {str(path)!r} does not exist")
        root = raw.resolve()
        if not root.is_dir():
            raise ValueError(f"repo path {str(path)!r} is not a folder")
        return cls(root, use_git=_in_git_work_tree(root))

    # --- the file list ----------------------------------------------------------------

    def files(self) -> tuple[list[str], bool]:
        """Sorted repo-relative paths of regular files, and whether the list was capped.

        Listed once per repo, like the tree: a diagnosis reads a checkout that holds still,
        and every glob and grep of the run would otherwise list it again.
        """
        if self._files is None:
            names = self._git_files() if self.use_git else None
            if not names:  # also a folder the enclosing repo ignores (a venv in ~/.pyenv)
                names = self._walk_files()
            self._files = sorted(names[:MAX_LISTED_FILES]), len(names) > MAX_LISTED_FILES
        return self._files

    def _git_files(self) -> list[str] | None:
        try:
            proc = subprocess.run(
                git_argv(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"),
                capture_output=True, timeout=LIST_TIMEOUT_SECONDS, env=git_env(),
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0:
            return None
        names = []
        for raw in dict.fromkeys(proc.stdout.split(b"\0")):  # a modified file is listed twice
            if not raw:
                continue
            name = os.fsdecode(raw)
            parts = name.split("/")
            if any(_pruned(p, PRUNED_DIRS) for p in parts[:-1]):
                continue
            try:  # tracked but deleted, a submodule, or a symlink: not a file to read
                if not stat.S_ISREG(os.lstat(self.root / name).st_mode):
                    continue
            except OSError:
                continue
            names.append(name)
            if len(names) > MAX_LISTED_FILES:
                break
        return names

    def _walk_files(self) -> list[str]:
        names: list[str] = []
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not _pruned(d, WALK_PRUNED_DIRS)
                             and not os.path.islink(os.path.join(folder, d)))
            rel = os.path.relpath(folder, self.root)
            for name in sorted(files):
                full = os.path.join(folder, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                names.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
            if len(names) > MAX_LISTED_FILES:
                break
        return names

    # --- the tools ----------------------------------------------------------------------

    def tree(self) -> dict[str, Any]:
        """`{root, tree}`: a folders-first overview, depth and entry capped; cached per repo."""
        if self._tree is None:
            names, _ = self.files()
            self._tree = _render_tree(self.root.name, names[:TREE_MAX_PATHS])
        return {"root": str(self.root), "tree": self._tree}

    def glob(self, pattern: str, max_results: int = 200) -> dict[str, Any]:
        """`{files: [{path, size_bytes}], returned_count, has_more}`, sorted by path."""
        regex = glob_regex(pattern)
        names, _ = self.files()
        files, has_more = [], False
        for name in names:
            if not regex.match(name):
                continue
            if len(files) >= max_results:
                has_more = True
                break
            try:
                size = (self.root / name).stat().st_size
            except OSError:  # removed since it was listed
                continue
            files.append({"path": name, "size_bytes": size})
        return {"files": files, "returned_count": len(files), "has_more": has_more}

    def grep(self, regex_pattern: str, glob_pattern: str | None = None,
             max_matches: int = 50) -> dict[str, Any]:
        """`{matches: [{path, line_number, line_text}], returned_match_count, has_more}`.

        Python `re` syntax, matched per line; binary files are skipped. When a
        bound stops the scan early, `scan_incomplete` says which and how far it got.
        """
        line_re = BoundedRegex(regex_pattern, label="invalid regex")
        # One search over the whole file rules most files out cheaply. MULTILINE makes it
        # a superset of the per-line search, except for \A and \Z, which then go per line.
        whole_re = (None if re.search(r"\\[AZ]", regex_pattern)
                    else BoundedRegex(regex_pattern, flags=regex.MULTILINE, label="invalid regex"))
        file_re = glob_regex(glob_pattern) if glob_pattern else None
        names, capped = self.files()
        deadline = time.monotonic() + GREP_MAX_SECONDS
        matches: list[dict[str, Any]] = []
        has_more, scanned, searched, skipped_large = False, 0, 0, 0
        stopped = "the file list was capped at %d files" % MAX_LISTED_FILES if capped else None
        for name in names:
            if file_re is not None and not file_re.match(name):
                continue
            if scanned >= GREP_MAX_SCAN_BYTES or time.monotonic() > deadline:
                stopped = (f"stopped after {searched} files ({scanned} bytes): the scan budget "
                           "ran out; narrow glob_pattern")
                break
            data = _read_small(self.root / name)
            if data is None:
                skipped_large += 1
                continue
            scanned += len(data)
            searched += 1
            if _is_binary(data):
                continue
            text = data.decode("utf-8", errors="replace")
            if whole_re is not None and not whole_re.search(text):
                continue
            for number, line in enumerate(text.split("\n"), start=1):
                if line.endswith("\r"):
                    line = line[:-1]
                if not line_re.search(line):
                    continue
                if len(matches) >= max_matches:
                    has_more = True
                    break
                matches.append({"path": name, "line_number": number,
                                "line_text": cap_text(line, GREP_LINE_CHAR_CAP)[0]})
            if has_more:
                break
        result: dict[str, Any] = {"matches": matches, "returned_match_count": len(matches),
                                  "has_more": has_more}
        if stopped and not has_more:
            result["scan_incomplete"] = stopped
        if skipped_large:
            result["skipped_large_files"] = skipped_large
        return result

    def read(self, path: str, offset: int = READ_OFFSET_DEFAULT,
             limit: int = READ_LIMIT_DEFAULT) -> dict[str, Any]:
        """A 1-based window of a text file as `cat -n` lines:
        `{path, content, start_line, end_line, total_line_count, truncated}`."""
        resolved = confine(self.root, path)
        if not resolved.is_file():
            raise ValueError(f"not a file: {path!r}; use glob_files to find paths")
        rel = resolved.relative_to(self.root).as_posix()
        with resolved.open("rb") as fh:
            if _is_binary(fh.read(BINARY_SNIFF_BYTES)):
                raise ValueError(f"binary file: {path!r}; read_file only reads text files")
            fh.seek(0)
            return render_window(byte_lines(fh), path=rel, offset=offset, limit=limit)


def _read_small(path: Path) -> bytes | None:
    """The file's bytes, or None when it is bigger than GREP_MAX_FILE_BYTES."""
    try:
        with path.open("rb") as fh:
            data = fh.read(GREP_MAX_FILE_BYTES + 1)
    except OSError:
        return b""
    return None if len(data) > GREP_MAX_FILE_BYTES else data


def _pruned(name: str, names: frozenset[str]) -> bool:
    return name in names or name.endswith(PRUNED_SUFFIXES)


def _in_git_work_tree(root: Path) -> bool:
    try:
        proc = subprocess.run(
            git_argv(root, "rev-parse", "--is-inside-work-tree"),
            capture_output=True, text=True, timeout=10, env=git_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def _render_tree(root_name: str, paths: list[str]) -> str:
    """Folders first, then files, each sorted; caps are marked so the model knows to glob."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        *folders, leaf = path.split("/")
        for part in folders:
            node = node.setdefault(part, {})
        node.setdefault(leaf, None)
    lines = [f"{root_name}/"]
    count = 0

    def walk(node: dict[str, Any], depth: int) -> bool:
        nonlocal count
        for name, child in sorted(node.items(), key=lambda kv: (kv[1] is None, kv[0])):
            if count >= TREE_MAX_ENTRIES:
                lines.append(f"{'  ' * depth}... (entry cap of {TREE_MAX_ENTRIES} reached)")
                return False
            count += 1
            lines.append(f"{'  ' * depth}{name}{'/' if child is not None else ''}")
            if child is not None:
                if depth + 1 >= TREE_MAX_DEPTH:
                    lines.append(f"{'  ' * (depth + 1)}... (depth cap reached)")
                elif not walk(child, depth + 1):
                    return False
        return True

    walk(tree, 1)
    if len(paths) >= TREE_MAX_PATHS:
        lines.append(f"... (only the first {TREE_MAX_PATHS} files were read; use glob_files)")
    return "\n".join(lines)
