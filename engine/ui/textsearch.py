"""The Traces page's text search over the candidates' raw span lines, as the tools' `regex_pattern`.

A search with few hits reads every candidate: a narrowed search on the 50k set
reads ~90 MB of span lines, so the time is in the bytes. A plain ASCII text is
a byte search on the raw line (the same answers as the regex on the decoded
line), anchored on the text's rarest byte in the first 64 KB of lines read:
`bytes.find` of one byte runs at memchr's speed, where a substring search over
JSON steps about a byte at a time once the text's letters are common (the
usual case).
"""

from __future__ import annotations

import re
from typing import Any

from halo_live.engine.filtering import compile_regex, trace_matches

SAMPLE_BYTES = 1 << 16  # the lines read (searched plainly) before the anchor is chosen
RARE = 1 / 256  # an anchor more frequent than this: a plain substring search is as fast


def find_traces(snap: Any, ids: list[str], pattern: str, enough: int | None) -> tuple[list[str], bool]:
    """The ids (in order) whose raw spans match `pattern` as the tools' regex_pattern does,
    read until `enough` are found; True with them when every candidate was read (the count
    is then exact)."""
    needle = ascii_literal(pattern)
    if needle is None:
        return _find(snap, ids, enough, compile_regex(pattern))
    return _find_bytes(snap, ids, enough, needle)


def _find(snap: Any, ids: list[str], enough: int | None, regex: Any) -> tuple[list[str], bool]:
    found = []
    for tid in ids:
        if enough is not None and len(found) >= enough:
            return found, False
        if trace_matches(snap, tid, regex):
            found.append(tid)
    return found, True


def _find_bytes(snap: Any, ids: list[str], enough: int | None, needle: bytes) -> tuple[list[str], bool]:
    # One loop with no call per line: ~35k lines on the narrowed 50k search.
    found: list[str] = []
    sample: list[bytes] = []
    sampled = 0
    anchor, back = b"", -1  # back < 0: no anchor (yet): `needle in line`
    for tid in ids:
        if enough is not None and len(found) >= enough:
            return found, False
        for line in snap.span_lines(tid):
            if sampled < SAMPLE_BYTES:
                sample.append(line)
                sampled += len(line)
                if sampled >= SAMPLE_BYTES:
                    anchor, back = _anchor(needle, b"".join(sample))
            if back < 0:
                if needle in line:
                    found.append(tid)
                    break
                continue
            at = line.find(anchor, back)
            while at >= 0 and not line.startswith(needle, at - back):
                at = line.find(anchor, at + 1)
            if at >= 0:
                found.append(tid)
                break
    return found, True


def _anchor(needle: bytes, sample: bytes) -> tuple[bytes, int]:
    """The needle's rarest byte in `sample` and its index in the needle; (b"", -1) if none is rare."""
    counts = {byte: sample.count(byte) for byte in set(needle)}
    rarest = min(counts, key=lambda byte: (counts[byte], byte))
    if counts[rarest] > len(sample) * RARE:
        return b"", -1
    return bytes([rarest]), needle.index(rarest)


def ascii_literal(pattern: str) -> bytes | None:
    """The bytes a pattern matches literally (a plain search is `re.escape(text)`), if it is
    plain ASCII: in UTF-8 those bytes only ever encode those characters, and decoding with
    `errors="replace"` never makes ASCII, so a byte search answers as the regex would."""
    text = re.sub(r"\\(.)", r"\1", pattern, flags=re.S)
    if not text or not text.isascii() or re.escape(text) != pattern:
        return None
    return text.encode("ascii")
