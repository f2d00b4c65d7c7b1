"""Read-only views of a repository for the agent's code and git tools (`--repo-path`):
the files (`code.py`), line windows and caps (`window.py`) and git history (`git.py`),
in pure Python over `git` itself, with no ripgrep."""
