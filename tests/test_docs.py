"""The docs stay honest: every `halo` command has help and is in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from halo_live import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"halo {name}" in out
    assert len(out.strip().splitlines()) > 3


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_is_in_the_readme(name):
    assert re.search(rf"`halo {name}\b", README), f"README does not document `halo {name}`"


def test_top_level_help_lists_every_command_and_the_ask_form(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--prompt" in out
    for name in cli.COMMANDS:
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), f"`halo --help` does not list {name}"


def test_readme_quickstart_has_exactly_two_commands():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = quickstart.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "halo demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install" in ci and "'.[test]'" in ci
    assert "python -m pytest" in ci


def test_readme_names_no_registry_or_repository_url():
    for url in re.findall(r"https?://[^\s)`'\"]+", README):
        assert re.match(r"https?://(127\.0\.0\.1|localhost)", url), url
