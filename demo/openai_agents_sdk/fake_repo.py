"""A tiny fake repository ("ledger", a bookkeeping library) for the codebase-helper agent.

Kept as Python strings so it ships with the package whatever the install mode;
`materialize(root)` writes it to disk for the tools to browse.
"""

from __future__ import annotations

from pathlib import Path

_FILLER = "\n".join(f"# {i:02d} reserved for future settings" for i in range(1, 31))

FILES: dict[str, str] = {
    "README.md": """# ledger

A small double-entry bookkeeping library with a CLI.

    pip install ledger
    ledger balance --account cash
""",
    "setup.cfg": """[metadata]
name = ledger
license = MIT
python_requires = >=3.9
""",
    "src/ledger/__init__.py": '''"""ledger: double-entry bookkeeping."""

__version__ = "1.4.2"
API_LEVEL = 7
''',
    "src/ledger/config.py": f'''"""Runtime configuration of ledger."""

{_FILLER}

DEFAULT_PORT = 8080
MAX_RETRIES = 3
TIMEOUT_SECONDS = 12.5
LOG_LEVEL = "INFO"
CACHE_SIZE = 256
DEFAULT_CURRENCY = "EUR"
ROUNDING_MODE = "half_even"
PAGE_SIZE = 50
''',
    "src/ledger/client.py": '''"""HTTP client of the ledger server."""

import time

from ledger.config import MAX_RETRIES, TIMEOUT_SECONDS

BACKOFF_FACTOR = 0.5
USER_AGENT = "ledger-client/1.4"
RETRY_STATUSES = (429, 502, 503)


class LedgerClient:
    """Talks to a ledger server."""

    def __init__(self, base_url, retries=MAX_RETRIES):
        self.base_url = base_url
        self.retries = retries

    def fetch_balance(self, account):
        for attempt in range(self.retries):
            time.sleep(BACKOFF_FACTOR * attempt)
        return 0
''',
    "src/ledger/storage.py": f'''"""Persistence of journal entries in SQLite."""

import hashlib

{_FILLER}

TABLE_NAME = "entries"
SCHEMA_VERSION = 12
CHECKSUM_ALGORITHM = "sha256"
VACUUM_INTERVAL_DAYS = 30


def compute_checksum(payload):
    return hashlib.new(CHECKSUM_ALGORITHM, payload).hexdigest()
''',
    "src/ledger/export.py": '''"""Exports of the journal."""

CSV_DELIMITER = ";"
DATE_FORMAT = "%Y-%m-%d"
EXPORT_ENCODING = "utf-8"
MAX_EXPORT_ROWS = 100000
''',
    "src/ledger/auth.py": f'''"""API tokens."""

{_FILLER}

TOKEN_TTL_MINUTES = 45
HASH_ROUNDS = 12
TOKEN_PREFIX = "lgr_"
MIN_PASSWORD_LENGTH = 10
''',
    "src/ledger/cli.py": '''"""The `ledger` command line."""

COMMANDS = ("balance", "export", "import")
DEFAULT_ACCOUNT = "cash"
EXIT_USAGE = 64
PROG_NAME = "ledger"
''',
    "src/ledger/reports.py": f'''"""Periodic reports."""

{_FILLER}

FISCAL_YEAR_START = "04-01"
REPORT_TIMEZONE = "Europe/Berlin"
TOP_ACCOUNTS = 15
CHART_WIDTH = 72
''',
    "tests/test_client.py": '''from ledger.client import LedgerClient

TEST_BASE_URL = "http://localhost:9999"


def test_retries_default():
    assert LedgerClient(TEST_BASE_URL).retries == 3
''',
    "docs/CHANGELOG.md": """# Changelog

## 1.4.2
- RELEASE_DATE = 2024-03-18
- Fix rounding of negative amounts.
""",
}


def materialize(root: str | Path) -> Path:
    """Write the fake repository under `root` (idempotent) and return `root`."""
    root = Path(root)
    for rel, text in FILES.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return root
