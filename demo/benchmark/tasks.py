"""The benchmark's tasks: questions about the fake repository, each with the one right value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One question; `expected` is the value a correct answer must contain."""

    id: str
    question: str
    expected: str


# (constant, expected value, how the question is asked)
_FACTS = [
    ("__version__", "1.4.2", "Which version does `__version__` declare?"),
    ("API_LEVEL", "7", "What API level does `API_LEVEL` declare?"),
    ("DEFAULT_PORT", "8080", "What is `DEFAULT_PORT` set to?"),
    ("MAX_RETRIES", "3", "How many retries does `MAX_RETRIES` allow by default?"),
    ("TIMEOUT_SECONDS", "12.5", "What is the value of `TIMEOUT_SECONDS`?"),
    ("LOG_LEVEL", "INFO", "Which log level is `LOG_LEVEL`?"),
    ("CACHE_SIZE", "256", "How big is `CACHE_SIZE`?"),
    ("DEFAULT_CURRENCY", "EUR", "Which currency is `DEFAULT_CURRENCY`?"),
    ("ROUNDING_MODE", "half_even", "Which `ROUNDING_MODE` does ledger use?"),
    ("PAGE_SIZE", "50", "What is `PAGE_SIZE`?"),
    ("BACKOFF_FACTOR", "0.5", "What is the client's `BACKOFF_FACTOR`?"),
    ("USER_AGENT", "ledger-client/1.4", "Which `USER_AGENT` does the client send?"),
    ("RETRY_STATUSES", "429, 502, 503", "Which HTTP statuses are in `RETRY_STATUSES`?"),
    ("TABLE_NAME", "entries", "What is the SQLite `TABLE_NAME`?"),
    ("SCHEMA_VERSION", "12", "Which `SCHEMA_VERSION` does storage use?"),
    ("CHECKSUM_ALGORITHM", "sha256", "Which `CHECKSUM_ALGORITHM` is used?"),
    ("VACUUM_INTERVAL_DAYS", "30", "How often, in days, does `VACUUM_INTERVAL_DAYS` vacuum?"),
    ("CSV_DELIMITER", ";", "Which `CSV_DELIMITER` do exports use?"),
    ("DATE_FORMAT", "%Y-%m-%d", "What is the export `DATE_FORMAT`?"),
    ("EXPORT_ENCODING", "utf-8", "Which `EXPORT_ENCODING` do exports use?"),
    ("MAX_EXPORT_ROWS", "100000", "What is `MAX_EXPORT_ROWS`?"),
    ("TOKEN_TTL_MINUTES", "45", "How many minutes is `TOKEN_TTL_MINUTES`?"),
    ("HASH_ROUNDS", "12", "How many `HASH_ROUNDS` does auth use?"),
    ("TOKEN_PREFIX", "lgr_", "What is the API `TOKEN_PREFIX`?"),
    ("MIN_PASSWORD_LENGTH", "10", "What is `MIN_PASSWORD_LENGTH`?"),
    ("COMMANDS", "balance", "Which CLI `COMMANDS` exist?"),
    ("DEFAULT_ACCOUNT", "cash", "What is the CLI's `DEFAULT_ACCOUNT`?"),
    ("EXIT_USAGE", "64", "Which exit code is `EXIT_USAGE`?"),
    ("PROG_NAME", "ledger", "What is the CLI's `PROG_NAME`?"),
    ("FISCAL_YEAR_START", "04-01", "When does `FISCAL_YEAR_START` begin?"),
    ("REPORT_TIMEZONE", "Europe/Berlin", "Which `REPORT_TIMEZONE` do reports use?"),
    ("TOP_ACCOUNTS", "15", "How many `TOP_ACCOUNTS` does a report list?"),
    ("CHART_WIDTH", "72", "What is the report `CHART_WIDTH`?"),
    ("TEST_BASE_URL", "http://localhost:9999", "Which `TEST_BASE_URL` do the tests use?"),
    ("RELEASE_DATE", "2024-03-18", "What is the `RELEASE_DATE` of 1.4.2?"),
    ("python_requires", ">=3.9", "Which Python does `python_requires` ask for?"),
]

TASKS: list[Task] = [Task(f"t{i:02d}-{name.strip('_').lower()}", question, expected)
                     for i, (name, expected, question) in enumerate(_FACTS, 1)]


def select(count: int | None = None) -> list[Task]:
    """The first `count` tasks (all of them when None); a ValueError for a bad count."""
    if count is None:
        return list(TASKS)
    if not 1 <= count <= len(TASKS):
        raise ValueError(f"--tasks must be between 1 and {len(TASKS)}, not {count}")
    return TASKS[:count]
