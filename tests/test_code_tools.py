"""`--repo-path`: the code and git tools on real folders and a real git repository, and the
agent using them against the scripted model server, through `halo TRACE_PATH -p`."""

from __future__ import annotations

import json
import subprocess

import pytest

from halo_live.demo.model_server import ModelServer, Reply
from halo_live.engine.agent.code_tools import CODE_TOOLS, GIT_TOOLS, Repos, offered, run_repo_tool
from halo_live.cli import main
from halo_live.engine.repo.code import CodeRepo
from halo_live.engine.repo.window import LINE_CHAR_CAP
from halo_live.engine.repo.git import GitRepo
from tests._agent_helpers import RolePolicy, call, halo_args, tool_results, write_traces

TOOLS_PY = """\
def read_file(path):
    with open(path) as fh:
        return fh.read()


def run_tool(name, args):
    if name == "read_file":
        return read_file(args["path"])
    raise KeyError(name)
"""


def _git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root), *args],
                   check=True, capture_output=True)


@pytest.fixture(autouse=True)
def _no_ambient(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HALO_TELEMETRY_PATH", "GIT_DIR",
                 "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def checkout(tmp_path):
    """A git work tree with two commits, ignored files, junk folders and a binary file."""
    root = tmp_path / "harness"
    (root / "agent").mkdir(parents=True)
    (root / "agent" / "tools.py").write_text(TOOLS_PY.replace("fh.read()", "fh.read(100)"))
    (root / "README.md").write_text("# harness\n")
    (root / ".gitignore").write_text("*.log\nout/\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first: read_file reads 100 bytes")
    (root / "agent" / "tools.py").write_text(TOOLS_PY)
    (root / "data.bin").write_bytes(b"\x00\x01binary read_file\x00")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "read_file reads the whole file")
    (root / "debug.log").write_text("read_file ignored\n")
    (root / "out").mkdir()
    (root / "out" / "gen.py").write_text("read_file = 1\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("read_file\n")
    (root / "notes.txt").write_text("untracked but not ignored: read_file\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    return root


@pytest.fixture
def repos(checkout):
    return Repos.open(checkout)


def _tool(name):
    return next(t for t in CODE_TOOLS + GIT_TOOLS if t.name == name)


def _run(repos, name, **arguments):
    return run_repo_tool(repos, _tool(name), json.dumps(arguments))


# --- the code tools ----------------------------------------------------------------------


def test_tree_lists_folders_first_without_ignored_files(repos):
    result = _run(repos, "view_repo_tree")["result"]
    assert result["root"] == str(repos.code.root)
    lines = result["tree"].splitlines()
    assert lines[:3] == ["harness/", "  agent/", "    tools.py"]
    assert "  notes.txt" in lines and "  .gitignore" in lines
    for hidden in ("debug.log", "out/", "gen.py", "node_modules/", ".git/"):
        assert not any(line.strip() == hidden for line in lines), hidden


def test_glob_matches_at_any_depth_or_anchored_and_honours_gitignore(repos):
    every = _run(repos, "glob_files", pattern="*")["result"]
    assert [f["path"] for f in every["files"]] == [
        ".gitignore", "README.md", "agent/tools.py", "data.bin", "notes.txt"]
    assert _run(repos, "glob_files", pattern="*.py")["result"]["files"] == [
        {"path": "agent/tools.py", "size_bytes": len(TOOLS_PY)}]
    assert _run(repos, "glob_files", pattern="tools.py")["result"]["returned_count"] == 1
    assert _run(repos, "glob_files", pattern="/tools.py")["result"]["returned_count"] == 0
    assert _run(repos, "glob_files", pattern="agent/")["result"]["returned_count"] == 1
    capped = _run(repos, "glob_files", pattern="*", max_results=2)["result"]
    assert (capped["returned_count"], capped["has_more"]) == (2, True)


def test_grep_finds_lines_and_a_glob_confines_it(repos):
    result = _run(repos, "grep_files", regex_pattern=r"def \w+\(")["result"]
    assert [(m["path"], m["line_number"]) for m in result["matches"]] == [
        ("agent/tools.py", 1), ("agent/tools.py", 6)]
    everywhere = _run(repos, "grep_files", regex_pattern="read_file")["result"]
    # binary, ignored and pruned files are not searched
    assert {m["path"] for m in everywhere["matches"]} == {"agent/tools.py", "notes.txt"}
    confined = _run(repos, "grep_files", regex_pattern="read_file", glob_pattern="*.txt")["result"]
    assert confined["matches"] == [{"path": "notes.txt", "line_number": 1,
                                    "line_text": "untracked but not ignored: read_file"}]
    capped = _run(repos, "grep_files", regex_pattern="read_file", max_matches=1)["result"]
    assert (capped["returned_match_count"], capped["has_more"]) == (1, True)


def test_a_bad_regex_is_an_error_result(repos):
    result = _run(repos, "grep_files", regex_pattern="(unclosed")
    assert set(result) == {"error"} and "invalid regex" in result["error"]
    with pytest.raises(ValueError):
        repos.code.grep("[z-a]")


def test_read_returns_a_numbered_window(repos):
    result = _run(repos, "read_file", path="agent/tools.py", offset=6, limit=2)["result"]
    assert result == {"path": "agent/tools.py", "content": "     6\tdef run_tool(name, args):\n"
                      "     7\t    if name == \"read_file\":", "start_line": 6, "end_line": 7,
                      "total_line_count": 9, "truncated": False}
    past = _run(repos, "read_file", path="agent/tools.py", offset=50)["result"]
    assert (past["content"], past["start_line"], past["end_line"]) == ("", 0, 0)


def test_a_huge_line_is_clipped_and_flagged(checkout):
    (checkout / "min.js").write_text("x" * (LINE_CHAR_CAP + 10) + "\nshort\n")
    result = CodeRepo.open(checkout).read("min.js", 1, 10)
    assert result["truncated"] and result["total_line_count"] == 2
    assert f"[HALO truncated: original {LINE_CHAR_CAP + 10} chars]" in result["content"]
    assert result["content"].endswith("     2\tshort")


@pytest.mark.parametrize("path", ["../outside.txt", "agent/../../outside.txt", "ABSOLUTE",
                                  "link_out.txt", "link_dir/outside.txt"])
def test_paths_cannot_leave_the_root(repos, checkout, path):
    (checkout / "link_out.txt").symlink_to(checkout.parent / "outside.txt")
    (checkout / "link_dir").symlink_to(checkout.parent)
    path = str(checkout.parent / "outside.txt") if path == "ABSOLUTE" else path
    result = _run(repos, "read_file", path=path)
    assert "secret" not in json.dumps(result)
    assert "outside the repo root" in result["error"] or "absolute" in result["error"]
    # links are neither listed nor searched
    assert not _run(repos, "grep_files", regex_pattern="secret")["result"]["matches"]
    assert "link" not in json.dumps(_run(repos, "glob_files", pattern="*")["result"])


def test_a_binary_file_is_refused(repos):
    assert "binary file" in _run(repos, "read_file", path="data.bin")["error"]
    assert "binary file" in _run(repos, "git_read_file", ref="HEAD", path="data.bin")["error"]


def test_bad_arguments_are_error_results(repos):
    assert "invalid arguments for read_file" in _run(repos, "read_file", path="x", bogus=1)["error"]
    assert "not a file" in _run(repos, "read_file", path="agent")["error"]
    assert "limit" in _run(repos, "read_file", path="README.md", limit=999_999)["error"]


def test_a_plain_folder_is_walked_with_junk_pruned_and_gets_no_git_tools(tmp_path):
    root = tmp_path / "plain"
    for rel in ("src/app.py", "node_modules/x.js", ".venv/lib.py", "build/out.py",
                "pkg.egg-info/PKG-INFO", "traces.jsonl.halo-index/data.mdb", "__pycache__/a.pyc"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("app = 1\n")
    repos = Repos.open(root)
    assert repos.git is None and GitRepo.open(root) is None
    assert [t.name for t in offered(repos)] == [t.name for t in CODE_TOOLS]
    assert [f["path"] for f in repos.code.glob("*", 100)["files"]] == ["src/app.py"]
    assert [m["path"] for m in repos.code.grep("app")["matches"]] == ["src/app.py"]
    assert offered(None) == ()


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p / "file.txt", lambda p: ""])
def test_open_refuses_a_missing_path_a_file_or_nothing(tmp_path, make):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="does not exist|not a folder|empty"):
        CodeRepo.open(make(tmp_path))
    with pytest.raises(ValueError):
        GitRepo.open(make(tmp_path))


# --- the git tools -----------------------------------------------------------------------


def test_git_log_show_diff_blame_and_read_at_a_revision(repos):
    log = _run(repos, "git_log")["result"]
    assert [c["subject"] for c in log["commits"]] == [
        "read_file reads the whole file", "first: read_file reads 100 bytes"]
    newest, first = log["commits"]
    assert newest["short_sha"] == newest["full_sha"][:12] and newest["author"] == "t"
    assert [c["subject"] for c in _run(repos, "git_log", pickaxe_string="fh.read(100)")[
        "result"]["commits"]] == ["read_file reads the whole file", "first: read_file reads 100 bytes"]
    assert _run(repos, "git_log", path="data.bin", max_commits=1)["result"]["returned_count"] == 1
    show = _run(repos, "git_show", ref=newest["short_sha"])["result"]
    assert show["commit"] == newest and "agent/tools.py" in show["body"]
    patch = _run(repos, "git_show", ref="HEAD", include_patch=True, path="agent/tools.py")["result"]
    assert "-        return fh.read(100)" in patch["body"]
    diff = _run(repos, "git_diff", from_ref=first["short_sha"], to_ref="HEAD", stat_only=False)
    assert "+        return fh.read()" in diff["result"]["diff"]
    blame = _run(repos, "git_blame", path="agent/tools.py", start_line=3, end_line=3)["result"]
    assert blame["lines"] == [{"line_number": 3, "short_sha": newest["short_sha"], "author": "t",
                               "summary": newest["subject"], "line_text": "        return fh.read()"}]
    old = _run(repos, "git_read_file", ref="HEAD~1", path="agent/tools.py", offset=3, limit=1)
    assert old["result"]["content"] == "     3\t        return fh.read(100)"
    missing = _run(repos, "git_read_file", ref="HEAD", path="not_there")["error"]
    assert missing.startswith("git show failed") and "not_there" in missing
    untouched = _run(repos, "git_show", ref=first["short_sha"], path="data.bin")["error"]
    assert "does not change 'data.bin'" in untouched


# A value that git could read as an option is refused (revisions) or stays a value: glued to
# its flag (`-S`, `-G`, `--since=`) or after `--` (paths), where it is only a search or a path.
@pytest.mark.parametrize(("tool", "arguments", "refused"), [
    ("git_log", {"ref_range": "--output=PWNED"}, True),
    ("git_log", {"pickaxe_string": "--output=PWNED"}, False),
    ("git_log", {"pickaxe_regex": "--output=PWNED"}, False),
    ("git_log", {"since": "--output=PWNED"}, False),
    ("git_log", {"path": "--output=PWNED"}, False),
    ("git_show", {"ref": "--output=PWNED"}, True),
    ("git_show", {"ref": "HEAD", "path": "--output=PWNED"}, True),
    ("git_diff", {"from_ref": "--output=PWNED", "to_ref": "HEAD"}, True),
    ("git_diff", {"from_ref": "HEAD", "to_ref": "-p"}, True),
    ("git_blame", {"path": "-L", "start_line": 1, "end_line": 2}, True),
    ("git_blame", {"path": "agent/tools.py", "start_line": 1, "end_line": 2,
                   "ref": "--contents=/etc/passwd"}, True),
    ("git_read_file", {"ref": "--output=PWNED", "path": "agent/tools.py"}, True),
    ("git_show", {"ref": "HEAD:../outside.txt"}, True),
])
def test_dash_leading_arguments_never_become_git_options(repos, checkout, tool, arguments, refused):
    result = _run(repos, tool, **arguments)
    assert not (checkout / "PWNED").exists() and not (checkout.parent / "PWNED").exists()
    assert "root:" not in json.dumps(result) and "secret" not in json.dumps(result)
    if refused:
        assert set(result) == {"error"}
    else:  # taken as a search string, a date or a path
        assert "commits" in result["result"]


def test_a_repo_without_commits_has_an_empty_log(tmp_path):
    _git(tmp_path, "init", "-q")
    assert Repos.open(tmp_path).git.log()["commits"] == []


# --- the agent and the CLI ---------------------------------------------------------------


@pytest.fixture
def traces(tmp_path):
    return write_traces(tmp_path / "traces" / "traces.jsonl")


def test_the_agent_greps_and_reads_the_code(traces, checkout, capsys):
    def read_hit(turn):
        hit = tool_results(turn, "grep_files")[0]["result"]["matches"][0]
        return Reply(tool_calls=[call("read_file", path=hit["path"],
                                      offset=hit["line_number"], limit=3)])

    def answer(turn):
        window = tool_results(turn, "read_file")[0]["result"]
        return Reply(tool_calls=[call("final_answer", answer=f"{window['path']}:"
                                      f"{window['start_line']} {window['content'].splitlines()[2].split(chr(9))[1]}")])

    policy = RolePolicy(root=[
        Reply(tool_calls=[call("grep_files", regex_pattern=r"def read_file", glob_pattern="*.py"),
                          call("call_subagent", input="Where is read_file defined?")]),
        read_hit, answer,
    ], sub=[Reply(text="in agent/tools.py")])
    with ModelServer(policy) as server:
        code = main(halo_args(traces, server, "--repo-path", str(checkout), "--max-depth", "1"))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "agent/tools.py:1         return fh.read()"
    first = policy.seen["root"][0]
    names = {t["name"] for t in first.tools}
    assert {t.name for t in CODE_TOOLS + GIT_TOOLS} <= names and "get_dataset_overview" in names
    assert str(checkout) in first.instructions and "path:line" in first.instructions
    assert "git_blame" in first.instructions
    # subagents get the same code and git tools, and are told about them
    sub = policy.seen["sub"][0]
    assert {t.name for t in CODE_TOOLS + GIT_TOOLS} <= {t["name"] for t in sub.tools}
    assert "path:line" in sub.instructions


def test_without_repo_path_no_code_tools_are_offered(traces, capsys):
    policy = RolePolicy(root=[Reply(text="no code here")])
    with ModelServer(policy) as server:
        assert main(halo_args(traces, server)) == 0
    turn = policy.seen["root"][0]
    names = {t["name"] for t in turn.tools}
    assert not names & {t.name for t in CODE_TOOLS + GIT_TOOLS}
    assert "path:line" not in turn.instructions and "grep_files" not in turn.instructions


@pytest.mark.parametrize("which", ["missing", "file"])
def test_a_bad_repo_path_is_one_line_before_any_model_call(traces, tmp_path, capsys, which):
    bad = tmp_path / "nope" if which == "missing" else traces
    with ModelServer(RolePolicy()) as server:
        code = main(halo_args(traces, server, "--repo-path", str(bad)))
        turns = list(server.turns)
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and turns == []
    assert len(lines) == 1 and lines[0].startswith("halo: error: --repo-path") and "Traceback" not in err
