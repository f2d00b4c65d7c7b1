"""Numbered line windows of text files, shared by `read_file` and `git_read_file`.

The reference's rendering (halo-engine 0.3.5 `_textwindow.py`): `cat -n`
numbering on `\\n`, a per-line cap and a per-call budget, both flagged as
`truncated`. We add two bounds it lacks: a line longer than READ_LINE_MAX_BYTES
is skipped past rather than held whole, and counting stops after
READ_MAX_SCAN_BYTES of a huge file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

READ_OFFSET_DEFAULT = 1
READ_LIMIT_DEFAULT = 500
READ_LIMIT_MAX = 2000
LINE_CHAR_CAP = 2000
RESPONSE_CHAR_BUDGET = 150_000
BINARY_SNIFF_BYTES = 8192
READ_MAX_SCAN_BYTES = 512 * 1024 * 1024  # past the window, lines are only counted
READ_LINE_MAX_BYTES = 1024 * 1024  # longer lines are skipped past, never held whole


def cap_text(text: str, cap: int) -> tuple[str, bool]:
    """`text` cut to `cap` chars with the reference's marker, and whether it was cut."""
    if len(text) <= cap:
        return text, False
    return f"{text[:cap]}... [HALO truncated: original {len(text)} chars]", True


def render_window(lines: Iterator[tuple[str, int | None]], *, path: str, offset: int,
                  limit: int) -> dict[str, Any]:
    """Number lines `offset..offset+limit-1` (also used by `git_read_file`).

    `lines` yields (text, original length if the text is only a head). Per-line
    and per-call caps flag `truncated`; `total_line_count_is_lower_bound` appears
    when counting stopped at the scan budget of a huge file.
    """
    rendered: list[str] = []
    used, start, end, total, truncated, spent = 0, 0, 0, 0, False, False
    lower_bound = False
    for number, (line, original) in enumerate(lines, start=1):
        if line is None:  # the scan budget ran out
            lower_bound = True
            break
        total = number
        if not offset <= number < offset + limit or spent:
            continue
        if original is not None:
            line, truncated = f"{line[:LINE_CHAR_CAP]}... [HALO truncated: original {original} bytes]", True
        else:
            line, cut = cap_text(line, LINE_CHAR_CAP)
            truncated = truncated or cut
        entry = f"{number:6d}\t{line}"
        if used + len(entry) > RESPONSE_CHAR_BUDGET:
            truncated = spent = True
            continue
        rendered.append(entry)
        used += len(entry) + 1
        start = start or number
        end = number
    result: dict[str, Any] = {"path": path, "content": "\n".join(rendered), "start_line": start,
                              "end_line": end, "total_line_count": total, "truncated": truncated}
    if lower_bound:
        result["total_line_count_is_lower_bound"] = True
    return result


def byte_lines(fh) -> Iterator[tuple[str | None, int | None]]:
    """Decoded `\\n`-split lines of a binary stream; an overlong line yields only its head.

    Yields `(None, None)` once READ_MAX_SCAN_BYTES are read, so counting stops.
    """
    read = 0
    while True:
        chunk = fh.readline(READ_LINE_MAX_BYTES)
        if not chunk:
            return
        read += len(chunk)
        original = None
        if not chunk.endswith(b"\n") and len(chunk) == READ_LINE_MAX_BYTES:
            original = len(chunk)
            while True:  # skip the rest of the line without holding it
                more = fh.readline(READ_LINE_MAX_BYTES)
                original += len(more)
                read += len(more)
                if not more or more.endswith(b"\n") or read > READ_MAX_SCAN_BYTES:
                    break
            chunk = chunk[:LINE_CHAR_CAP * 4]
        text = chunk.decode("utf-8", errors="replace").rstrip("\n")
        if text.endswith("\r"):
            text = text[:-1]
        yield text, original
        if read > READ_MAX_SCAN_BYTES:
            yield None, None
            return
