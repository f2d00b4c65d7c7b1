"""The page's JSON API: the trace tools of `halo tool`, plus what only the page needs.

    GET  /api/tools                      the tool names and their argument schemas
    GET  /api/tools/{name}?args=JSON     run one tool (POST: the JSON body is the arguments)
    GET  /api/run                        counters, ranked error signatures, traces over time
    GET  /api/traces?errors=&outcome=... one page of the Traces table: query_traces' rows and filters,
                                         by start time or a row field (sort=); sig_name +
                                         sig_message: the traces of one error signature; a text
                                         search (q=) stops at the page and says `total_is_lower_bound`
                                         unless exact=1
    GET  /api/trace/{id}/outline         the span tree without attribute bodies
    GET  /api/trace/{id}/span/{span_id}  view_spans of one span, its raw line and conversation

Every tool answer is `run_tool`'s, so the page, `halo tool` and the agent agree;
the Traces table validates its filters with the tools' own `TraceFilters`.
A bad request is `{"error": ...}` with a 4xx status, never a traceback. Index
reads block, so they run on the default thread pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import re
import threading
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from halo_live.engine import render, tools
from halo_live.engine.models import TraceFilters
from halo_live.engine.store import ToolError, TraceStore, index_filters
from halo_live.engine.ui import textsearch, views
from halo_live.indexer.models import IndexFilters

STORE = web.AppKey("store", TraceStore)
TRACE_PATH = web.AppKey("trace_path", str)
SORT_KEYS = web.AppKey("sort_keys", object)

PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 500
SORTS = ("newest", "oldest", "duration", "tokens", "spans")
_LIST_PARAMS = {"model": "model_names", "agent": "agent_names", "service": "service_names",
                "tool": "tool_names", "run": "run_ids"}


class BadRequest(ValueError):
    """A request the page (or a script) should fix: answered 400 with its message."""

log = logging.getLogger(__name__)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def error(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


async def _blocking(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _tool_status(result: dict[str, Any]) -> int:
    if "error" not in result:
        return 200
    return 404 if str(result["error"]).startswith("unknown trace_id") else 400


async def _keep_sort_keys_warm(app: web.Application):
    task = asyncio.get_running_loop().create_task(app[SORT_KEYS].keep_warm(app[STORE]))
    yield
    task.cancel()


async def list_tools(request: web.Request) -> web.Response:
    return _json({name: {"description": spec.description, "arguments": spec.json_schema()}
                  for name, spec in tools.TOOLS.items()})


async def run_tool(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if request.method == "POST":
        arguments: Any = await request.text()
    else:
        arguments = request.query.get("args", "{}")
    result = await _blocking(tools.run_tool, request.app[STORE], name, arguments)
    return _json(result, 404 if "error" in result and name not in tools.TOOLS else _tool_status(result))


async def run_summary(request: web.Request) -> web.Response:
    return _json(await _blocking(views.run_summary, request.app[STORE]))


def _bool(query, key: str) -> bool | None:
    value = query.get(key, "")
    if value in ("", "any"):
        return None
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise BadRequest(f"{key} must be true or false, got {value!r}")


def filters_from_query(query) -> dict[str, Any]:
    """The `filters` of query_traces from the page's URL parameters (validated by the tool)."""
    filters: dict[str, Any] = {}
    for param, field in _LIST_PARAMS.items():
        values = [v for v in query.getall(param, []) if v]
        if values:
            filters[field] = values
    for param, field in (("errors", "has_errors"), ("complete", "complete")):
        value = _bool(query, param)
        if value is not None:
            filters[field] = value
    for param, field in (("project", "project_id"), ("since", "start_time_gte"), ("until", "end_time_lte"),
                         ("outcome", "outcome")):
        if query.get(param):
            filters[field] = query[param]
    if query.get("min_ms"):
        try:
            filters["min_duration_ms"] = float(query["min_ms"])
        except ValueError:
            raise BadRequest(f"min_ms must be a number, got {query['min_ms']!r}") from None
    text = query.get("q", "")
    if text:
        filters["regex_pattern"] = text if _bool(query, "regex") else re.escape(text)
    return filters


def _int(query, key: str, default: int, high: int) -> int:
    try:
        value = int(query.get(key, default))
    except ValueError:
        raise BadRequest(f"{key} must be an integer, got {query.get(key)!r}") from None
    if not 0 <= value <= high:
        raise BadRequest(f"{key} must be between 0 and {high}, got {value}")
    return value


def traces_page(store: TraceStore, filters: dict[str, Any], sort: str, limit: int, offset: int,
                signature: tuple[str, str] | None = None, sort_keys: SortKeys | None = None,
                exact: bool = False) -> dict[str, Any]:
    """One page of matching traces in query_traces' shape, by start time (`newest`, `oldest`)
    from the index's start order; a text search, a row-field sort or an error signature
    reads the candidates (see `_scan_page`). A text search stops once the page is full
    unless `exact`, and then says its total is a lower bound."""
    if signature is not None or sort not in ("oldest", "newest") or filters.get("regex_pattern"):
        return _scan_page(store, filters, sort, limit, offset, signature, sort_keys, exact)
    try:
        flt = index_filters(TraceFilters.model_validate(filters))
        with store.snapshot() as snap:  # one snapshot: the page and its total agree
            total = snap.count(flt)
            rows = snap.rows(snap.trace_ids_by_start(flt, offset, limit, newest_first=sort == "newest"))
    except ValidationError as exc:
        return {"error": tools.describe_validation_error("query_traces", exc)}
    except ToolError as exc:
        return {"error": str(exc)}
    return _page(rows, total)


_SORT_FIELDS = ("duration", "tokens", "spans")
WHOLE_PASS_OVER = 2000  # missing keys beyond which one pass over all rows is cheaper
FEW_CANDIDATES = 32  # candidates below 1/32 of the traces: the index orders them from their rows (~10 ms
# for 1,300 on the 50k set); the warmed start ranks order them without a row read
WARM_GAP = 10.0  # seconds between background passes (~0.1 s each on 50k traces): about 1% of a CPU


class SortKeys:
    """Each trace's (duration, tokens, spans), kept while the index does not change.

    Ranking by a row field needs every candidate's key: one pass over the rows (about
    70 ms for 50k traces). `keep_warm` takes that pass in the background when the server
    starts and after each index change, so a user's first sort finds the keys ready; a
    request that comes while a pass is under way waits for it rather than taking another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passing = threading.Lock()  # held by the one pass under way
        self._version: tuple | None = None
        self._keys: dict[str, tuple[float, int, int]] = {}
        self._complete = False  # every trace of this version has its key
        # the last whole pass, in trace-number order: what an unfiltered sort ranks, no dict built
        self._columns: tuple[list[str], list[tuple[float, int, int]]] | None = None
        self._negated: dict[int, list[float]] = {}  # a field of the columns, negated: largest first
        # every trace's place in the start-time order (0: newest), warmed in the background only
        self._start_rank: tuple[tuple, dict[str, int]] | None = None

    @staticmethod
    def _version_of(snap: Any) -> tuple:
        t = snap.totals()
        return (t.indexed_bytes, t.total_spans, t.total_traces)

    def of(self, snap: Any, ids: list[str]) -> dict[str, tuple[float, int, int]]:
        version = self._version_of(snap)
        with self._lock:
            if version != self._version:
                self._version, self._keys, self._complete = version, {}, False
            if self._complete and not self._keys and self._columns is not None:
                self._keys = dict(zip(*self._columns))
            keys, complete = self._keys, self._complete
        if complete:
            return keys
        missing = [tid for tid in ids if tid not in keys]
        if len(missing) > WHOLE_PASS_OVER:  # one sequential pass beats as many row lookups
            self._whole(snap, version)
            return self.of(snap, ids)
        for r in snap.rows(missing):
            keys[r.trace_id] = (r.duration_ms or 0.0, r.total_input_tokens + r.total_output_tokens, r.span_count)
        return keys

    def _whole(self, snap: Any, version: tuple) -> None:
        """Every trace's key at `version` (that of `snap`), from one pass unless one just took them."""
        with self._passing:
            with self._lock:
                if version == self._version and self._complete:
                    return
            columns = snap.sort_columns()
            with self._lock:
                self._version, self._keys, self._complete, self._columns = version, {}, True, columns
                self._negated = {}

    def top(self, snap: Any, ids: list[str] | None, field: int, count: int) -> tuple[list[str], int]:
        """The first `count` of the candidates `ids` (None: every trace) by key `field`, largest
        first, ties by trace id, and how many were ranked."""
        version = self._version_of(snap)
        if ids is None or len(ids) > WHOLE_PASS_OVER:
            with self._lock:
                ready = version == self._version and self._complete and self._columns is not None
            if not ready:
                self._whole(snap, version)
            with self._lock:
                columns = self._columns if version == self._version and self._complete else None
                negated = self._negated.get(field) if columns is not None else None
            if columns is not None:
                every_id, values = columns
                if negated is None:
                    negated = [-v[field] for v in values]
                    with self._lock:
                        if self._columns is columns:
                            self._negated[field] = negated
                if ids is None:  # every trace of this version is in the columns
                    top = heapq.nsmallest(count, zip(negated, every_id))
                    return [tid for _, tid in top], len(every_id)
                wanted = set(ids)
                ranked = [pair for pair in zip(negated, every_id) if pair[1] in wanted]
                return [tid for _, tid in heapq.nsmallest(count, ranked)], len(ranked)
        keys = self.of(snap, ids if ids is not None else snap.trace_ids())
        ranked = [(-keys[tid][field], tid) for tid in (ids if ids is not None else keys) if tid in keys]
        return [tid for _, tid in heapq.nsmallest(count, ranked)], len(ranked)

    def by_start(self, snap: Any, ids: list[str], newest_first: bool) -> list[str] | None:
        """`ids` in the start-time index's order from the warmed ranks (as `trace_ids_by_start`
        orders them, without reading their rows); None unless warm for `snap`'s version."""
        version = self._version_of(snap)
        with self._lock:
            ranks = self._start_rank[1] if self._start_rank and self._start_rank[0] == version else None
        if ranks is None:
            return None
        try:
            return sorted(ids, key=ranks.__getitem__, reverse=not newest_first)
        except KeyError:  # not the same index state after all
            return None

    def warm(self, store: TraceStore) -> bool:
        """Take the keys of the index as it is now, unless they are ready; True if it read them."""
        with store.snapshot() as snap:
            version = self._version_of(snap)
            with self._lock:
                if version == self._version and self._complete and self._start_rank \
                        and self._start_rank[0] == version:
                    return False
            self._whole(snap, version)  # (nothing to do if a request just took the pass)
            ranks = {tid: i for i, tid in enumerate(snap.trace_ids_by_start())}
            with self._lock:
                self._start_rank = (version, ranks)
        return True

    @property
    def ready(self) -> bool:
        """Whether every trace's key and start rank are in hand (for the index version last seen)."""
        with self._lock:
            return self._complete and self._start_rank is not None and self._start_rank[0] == self._version

    async def keep_warm(self, store: TraceStore, interval: float = 1.0, gap: float = WARM_GAP) -> None:
        """Warm now, then after each index change (one small read of the totals a second),
        at most once every `gap` seconds: a growing index would otherwise cost a pass a second."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                read = await loop.run_in_executor(None, self.warm, store)
            except Exception as exc:  # a request still computes its keys itself: say why, go on
                log.warning("halo ui: warming the sort keys failed: %s", exc)
                read = True
            await asyncio.sleep(max(interval, gap) if read else interval)


def _scan_page(store: TraceStore, filters: dict[str, Any], sort: str, limit: int, offset: int,
               signature: tuple[str, str] | None, sort_keys: SortKeys | None, exact: bool = False) -> dict[str, Any]:
    """A page of the matches that hit `signature` (span name, status message as the index
    groups it), ranked by `sort`: the index narrows (a signature from the rows' signature
    lists), then only the candidates are read. A text search reads the candidates' spans in
    the page's order and stops at the page plus one unless `exact`."""
    try:
        flt = TraceFilters.model_validate(filters)
    except ValidationError as exc:
        return {"error": tools.describe_validation_error("query_traces", exc)}
    try:
        with store.snapshot() as snap:
            newest_first = sort != "oldest"
            if signature is not None:  # each row lists its signatures: no span entries read
                if flt.regex_pattern is None and sort in ("newest", "oldest"):
                    ids, total = snap.trace_ids_by_signature(*signature, index_filters(flt), offset, limit,
                                                             newest_first=newest_first)
                    return _page(snap.rows(ids), total)
                ids, _ = snap.trace_ids_by_signature(*signature, index_filters(flt), newest_first=newest_first)
            elif sort in ("newest", "oldest"):  # a text search's candidates, in the page's order
                indexed, ids = index_filters(flt), None
                if indexed != IndexFilters() and sort_keys is not None:
                    ids = snap.trace_ids(indexed)  # a few of them: ordered by the warmed ranks, no row read
                    few = len(ids) * FEW_CANDIDATES < snap.count()
                    ids = sort_keys.by_start(snap, ids, newest_first) if few else None
                if ids is None:
                    ids = snap.trace_ids_by_start(indexed, newest_first=newest_first)
            else:  # ranked below by key, then trace id: in whatever order the index has them
                indexed = index_filters(flt)
                if flt.regex_pattern is None:  # only the pages up to this one are ordered
                    candidates = None if indexed == IndexFilters() else snap.trace_ids(indexed)
                    top, total = (sort_keys or SortKeys()).top(snap, candidates, _SORT_FIELDS.index(sort),
                                                               offset + limit)
                    return _page(snap.rows(top[offset:]), total)
                ids = snap.trace_ids(indexed)
            if sort not in ("newest", "oldest"):  # rank every candidate by its key (cheap: no spans read)
                keys = (sort_keys or SortKeys()).of(snap, ids)
                field = _SORT_FIELDS.index(sort)
                ranked = [(-keys[tid][field], tid) for tid in ids if tid in keys]
                if flt.regex_pattern is None:  # only the pages up to this one are ordered
                    top = heapq.nsmallest(offset + limit, ranked)
                    return _page(snap.rows([tid for _, tid in top[offset:]]), len(ranked))
                ids = [tid for _, tid in sorted(ranked)]
            if flt.regex_pattern is None:
                return _page(snap.rows(ids[offset:offset + limit]), len(ids))
            matches, complete = textsearch.find_traces(snap, ids, flt.regex_pattern,
                                                       None if exact else offset + limit + 1)
            rows = snap.rows(matches[offset:offset + limit])
    except ToolError as exc:
        return {"error": str(exc)}
    return _page(rows, len(matches), lower_bound=not complete)


def _page(rows: list, total: int, lower_bound: bool = False) -> dict[str, Any]:
    return {"result": {"traces": [render.summary(r).model_dump(mode="json") for r in rows], "total": total,
                       "total_is_lower_bound": lower_bound}}


async def traces(request: web.Request) -> web.Response:
    query = request.query
    try:
        filters = filters_from_query(query)
        sort = query.get("sort", "newest")
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        limit = _int(query, "limit", PAGE_LIMIT, MAX_PAGE_LIMIT)
        offset = _int(query, "offset", 0, 10**9)
        exact = bool(_bool(query, "exact"))
    except BadRequest as exc:
        return error(str(exc))
    signature = (query["sig_name"], query.get("sig_message", "")) if query.get("sig_name") else None
    result = await _blocking(traces_page, request.app[STORE], filters, sort, limit, offset, signature,
                             request.app[SORT_KEYS], exact)
    if "error" in result:
        return error(result["error"])
    return _json(result["result"] | {"limit": limit, "offset": offset, "sort": sort, "filters": filters})


async def outline(request: web.Request) -> web.Response:
    try:
        data = await _blocking(views.outline, request.app[STORE], request.match_info["trace_id"])
    except ToolError as exc:
        return error(str(exc), 404)
    return _json(data)


async def span(request: web.Request) -> web.Response:
    store, trace_id, span_id = request.app[STORE], request.match_info["trace_id"], request.match_info["span_id"]
    view = await _blocking(tools.run_tool, store, "view_spans", {"trace_id": trace_id, "span_ids": [span_id]})
    if "error" in view:
        return error(view["error"], _tool_status(view))
    try:
        extras = await _blocking(views.span_extras, store, request.app[TRACE_PATH], trace_id, span_id)
    except ToolError as exc:
        return error(str(exc), 404)
    return _json({"view_spans": view} | extras)


def add_routes(app: web.Application) -> None:
    app[SORT_KEYS] = SortKeys()
    app.cleanup_ctx.append(_keep_sort_keys_warm)
    app.router.add_get("/api/tools", list_tools)
    app.router.add_get("/api/tools/{name}", run_tool)
    app.router.add_post("/api/tools/{name}", run_tool)
    app.router.add_get("/api/run", run_summary)
    app.router.add_get("/api/traces", traces)
    app.router.add_get("/api/trace/{trace_id}/outline", outline)
    app.router.add_get("/api/trace/{trace_id}/span/{span_id}", span)
