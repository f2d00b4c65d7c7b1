"""`halo import phoenix`: the spans of one Arize Phoenix project -> canonical lines.

Reads Phoenix's documented REST endpoint `GET /v1/projects/{project}/spans`
(the one `arize-phoenix-client`'s `spans.get_spans` calls) with plain HTTP:
the client hides the page cursor, and the cursor is what makes an import
resumable. Pages go in insertion order (`sort=id&order=asc`), so the
checkpoint is the Phoenix id of the last span written and a re-run (or
`--follow`) asks for the spans at or after it. Phoenix keeps OpenInference
attributes as they came (minus `openinference.span.kind`, which it returns as
`span_kind` and we put back) and no resource, scope or OTel span kind; each
span goes through the receiver's span step (`SpanBatch`, `project()`).
"""

from __future__ import annotations

import base64
import threading
import urllib.parse
from datetime import datetime
from typing import Any

from halo_live.exporter import canonical
from halo_live.exporter.importers.http import NotFound, Unreachable, get_json
from halo_live.exporter.importers.resume import (
    ImportFailed, ImportTarget, Notify, Progress, no_progress, outage_wait, warn,
)
from halo_live.exporter.otlp_convert import (
    Conversion, ScopeContext, SpanBatch, SpanParts, SpanProblem, span_head,
)

_STATUS = {"OK": canonical.STATUS_OK, "ERROR": canonical.STATUS_ERROR, "UNSET": canonical.STATUS_UNSET}
_NO_KIND = "UNKNOWN"  # Phoenix's span_kind when the span named none


def _ns(value: Any, what: str) -> int:
    ns = canonical.ns_from_iso(_utc(value)) if isinstance(value, str) else None
    if ns is None:
        raise SpanProblem(f"{what} {value!r} is not an ISO-8601 time")
    return ns


def _utc(text: str) -> str:
    """Phoenix's '...+00:00' as canonical '...Z' (other offsets converted)."""
    if text.endswith("Z"):
        return text
    try:
        return canonical.iso_from_datetime(datetime.fromisoformat(text))
    except ValueError:
        return ""


def span_parts(span: Any, ctx: ScopeContext) -> SpanParts:
    """One span of Phoenix's REST API as the receiver's decoded span."""
    if not isinstance(span, dict):
        raise SpanProblem("span is not an object")
    context = span.get("context") if isinstance(span.get("context"), dict) else {}
    trace_id = str(context.get("trace_id") or "").lower()
    span_id = str(context.get("span_id") or "").lower()
    parent = str(span.get("parent_id") or "").lower()
    # Phoenix keeps ids as the sender spelled them (the Agents SDK's are 12 bytes): any hex will do.
    for what, value in (("trace_id", trace_id), ("span_id", span_id), ("parent_id", parent)):
        if (value or what != "parent_id") and not _is_hex(value):
            raise SpanProblem(f"{what} {value!r} is not a hex id")
    name = span.get("name")
    if not isinstance(name, str) or not name:
        raise SpanProblem("span has no name")
    attributes = dict(span.get("attributes") or {})
    kind = span.get("span_kind")
    if isinstance(kind, str) and kind and kind != _NO_KIND:
        attributes.setdefault(canonical.OI_SPAN_KIND, kind)
    events = []
    for event in span.get("events") or ():
        if isinstance(event, dict):
            events.append({
                canonical.EVENT_NAME: str(event.get("name") or ""),
                canonical.EVENT_TIME: _utc(str(event.get("timestamp") or "")),
                canonical.EVENT_ATTRIBUTES: dict(event.get("attributes") or {}),
            })
    start = _ns(span.get("start_time"), "start_time")
    end = _ns(span.get("end_time"), "end_time") if span.get("end_time") else start
    head = span_head(trace_id, span_id, parent, "", name, canonical.SPAN_KIND_INTERNAL, start, end,
                     _STATUS.get(str(span.get("status_code") or "UNSET"), canonical.STATUS_UNSET),
                     str(span.get("status_message") or ""))
    return SpanParts(head, attributes, events, [], (0, 0, 0), ctx)


def _is_hex(value: str) -> bool:
    try:
        return bool(value) and len(bytes.fromhex(value)) * 2 == len(value) and value.strip("0") != ""
    except ValueError:
        return False


def _rowid(global_id: Any) -> int | None:
    """The insertion rowid inside a Phoenix span id ("Span:N", base64); None if it is not one."""
    try:
        kind, _, number = base64.b64decode(str(global_id)).decode().partition(":")
        return int(number) if kind == "Span" else None
    except (ValueError, UnicodeDecodeError):
        return None


class PhoenixImport:
    """Imports one Phoenix project into `target`, once or (`follow`) as spans arrive."""

    def __init__(self, url: str, project: str, target: ImportTarget, *, since: datetime | None = None,
                 page_size: int = 500, api_key: str | None = None, project_id: str = "",
                 notify: Notify = warn) -> None:
        if not url.startswith(("http://", "https://")):
            raise ImportFailed(f"--url {url!r} is not an http(s) address")
        self.url = url.rstrip("/")
        self.project = project
        self.target = target
        self.since = since
        self.page_size = min(page_size, 1000)  # Phoenix's own bound
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.ctx = ScopeContext(project_id or project, {}, "", "", {})
        self.notify = notify

    def _page(self, cursor: str | None, stop: threading.Event) -> dict:
        path = f"/v1/projects/{urllib.parse.quote(self.project, safe='')}/spans"
        params = {"limit": self.page_size, "sort": "id", "order": "asc", "cursor": cursor,
                  "start_time": self.since.isoformat() if self.since else None}
        try:
            page = get_json(self.url, path, params, headers=self.headers, what="Phoenix", stop=stop,
                            auth_hint="set PHOENIX_API_KEY to a Phoenix API key")
        except NotFound as exc:
            raise ImportFailed(f"Phoenix at {self.url} has no project {self.project!r} ({exc})") from None
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ImportFailed(f"Phoenix at {self.url} answered GET {path} with something that is "
                               "not a page of spans (is this a Phoenix server?)")
        return page

    def run(self, *, follow: bool = False, stop: threading.Event | None = None,
            poll_interval: float = 2.0, progress: Progress = no_progress) -> None:
        """Import every span after the checkpoint; with `follow`, keep going until `stop`."""
        stop = stop or threading.Event()
        stats = self.target.stats
        seen = failures = 0
        reached = False  # a server that never answered is an error, one that went away an outage
        while not stop.is_set():
            last = self.target.state.get("last_id")
            try:
                page = self._page(last, stop)
            except Unreachable as exc:
                if not follow or stop.is_set() or not reached:
                    raise
                failures += 1
                self.notify(f"{exc}; trying again in {outage_wait(failures):.0f}s")
                stop.wait(outage_wait(failures))
                continue
            failures, reached = 0, True
            spans = page["data"]
            if last is not None and spans and spans[0].get("id") == last:
                spans = spans[1:]  # the page starts at the span the last run ended on
            self._check_order(spans)
            out = Conversion()
            batch = SpanBatch(out)
            for span in spans:
                try:
                    batch.add(span_parts(span, self.ctx))
                except SpanProblem as exc:
                    stats.skip("spans Phoenix returned that are not usable", 1, str(exc))
            batch.finish()
            self.target.write(out.lines)
            if spans:
                stats.pages += 1
                seen += len(spans)
                self.target.save(last_id=spans[-1].get("id"))
                progress(seen, None)
            if page.get("next_cursor"):
                continue
            if not follow or stop.wait(poll_interval):
                break

    @staticmethod
    def _check_order(spans: list) -> None:
        ids = [_rowid(s.get("id")) for s in spans[:2] if isinstance(s, dict)]
        if len(ids) == 2 and None not in ids and ids[0] > ids[1]:  # type: ignore[operator]
            raise ImportFailed("this Phoenix server does not page spans in insertion order "
                               "(sort=id&order=asc); upgrade Phoenix to import from it")
