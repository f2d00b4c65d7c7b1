"""GET a JSON document from a trace server, with its failures as one clear sentence.

Both server importers page through REST APIs with plain `urllib` (no client
library in the hot loop, no extra dependency): a refused connection, refused
keys, a missing resource and a body that is not JSON each become an
`ImportFailed` that names the server; 429 and 5xx are retried a few times,
honouring `Retry-After`.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from halo_live.exporter.importers.resume import ImportFailed

_TIMEOUT = 30.0
_RETRIES = 4
_RETRY_STATUSES = (429, 500, 502, 503, 504)


class NotFound(ImportFailed):
    """The server answered 404: the caller words what is missing."""


class Unreachable(ImportFailed):
    """No answer, or 429/5xx after the retries: `--follow` waits and tries again."""


def get_json(base: str, path: str, params: Mapping[str, Any] | None = None, *,
             headers: Mapping[str, str] | None = None, what: str = "the server",
             stop: threading.Event | None = None, auth_hint: str = "") -> Any:
    """GET `base` + `path` with query `params` (None values left out) and decode its JSON."""
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
    url = base.rstrip("/") + path + (f"?{query}" if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    wait = stop or threading.Event()
    for attempt in range(_RETRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                body = response.read()
            break
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if exc.code in (401, 403):
                raise ImportFailed(f"{what} at {base} refused the credentials ({exc.code}{detail})"
                                   + (f"; {auth_hint}" if auth_hint else "")) from None
            if exc.code == 404:
                raise NotFound(f"{exc.code}{detail}") from None
            if exc.code in _RETRY_STATUSES and attempt < _RETRIES:
                wait.wait(_retry_after(exc, attempt))
                continue
            failed = Unreachable if exc.code in _RETRY_STATUSES else ImportFailed
            raise failed(f"{what} at {base} answered {exc.code} to GET {path}{detail}") from None
        except urllib.error.URLError as exc:
            raise Unreachable(f"cannot reach {what} at {base}: {exc.reason}") from None
        except OSError as exc:  # timeouts, a dropped connection
            raise Unreachable(f"cannot reach {what} at {base}: {exc}") from None
        except ValueError as exc:  # a malformed URL
            raise ImportFailed(f"cannot reach {what} at {base}: {exc}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ImportFailed(f"{what} at {base} did not answer JSON to GET {path} "
                           f"(is {base} the right address?)") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    try:
        data = json.loads(text)
        text = str(data.get("detail") or data.get("message") or data.get("error") or text)
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())[:200]
    return f": {text}" if text else ""


def _retry_after(exc: urllib.error.HTTPError, attempt: int) -> float:
    try:
        return min(30.0, float(exc.headers.get("Retry-After", "")))
    except ValueError:
        return min(30.0, 0.5 * 2 ** attempt)
