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
