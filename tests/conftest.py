"""Shared fixtures. Each fixture says what real thing it starts."""

from __future__ import annotations

import pytest

from tests.reference import ReferenceEngine, ensure_reference


@pytest.fixture(scope="session")
def halo_reference() -> ReferenceEngine:
    """halo-engine 0.3.5 in its own venv (built once); skips the test where it can't be installed."""
    try:
        python = ensure_reference()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"reference halo-engine 0.3.5 unavailable: {exc}")
    return ReferenceEngine(python)


@pytest.fixture(scope="session", autouse=True)
def _runs_out_of_home(tmp_path_factory):
    """Every `halo TRACE_PATH -p` saves a run folder: keep them out of the user's home, from
    the first (module-scoped) fixture on."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HALO_RUNS_DIR", str(tmp_path_factory.mktemp("halo-runs-session")))
        yield


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path_factory, monkeypatch):
    """A runs folder of each test's own, so `--resume last` finds that test's run."""
    monkeypatch.setenv("HALO_RUNS_DIR", str(tmp_path_factory.mktemp("halo-runs")))
