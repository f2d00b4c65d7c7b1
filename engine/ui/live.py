"""Live updates for the page: Server-Sent Events as the index catches up, a few a second at most.

A daemon thread follows the dataset (`TraceIndex.follow`: inotify, else a
short stat poll) and only sets a flag; one coroutine turns a set flag (or,
every second, a changed index version) into a `counters` event for every open
stream, then waits `MIN_INTERVAL` before the next, so a benchmark writing thousands of spans a second costs the browsers
at most four small events a second, and the page asks for more only then.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from halo_live.engine.store import TraceStore
from halo_live.engine.ui import views

MIN_INTERVAL = 0.25  # seconds between two events: at most 4 a second
CHECK_INTERVAL = 1.0  # without a signal, look at the index's version this often
KEEPALIVE = 15.0  # a comment line this often keeps proxies from closing an idle stream


class LiveFeed:
    """Follows the index in a thread and fans `counters` events out to SSE streams."""

    def __init__(self, store: TraceStore, index: Any) -> None:
        self._store = store
        self._index = index
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue] = set()
        self._task: asyncio.Task | None = None
        self.events_sent = 0

    async def start(self, app: web.Application | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._broadcast())
        self._thread = threading.Thread(target=self._follow, name="halo-ui-follow", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        self._index.follow(self._stop, on_update=lambda stats: self._wake())

    def _wake(self) -> None:
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(changed.set)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    async def _broadcast(self) -> None:
        # The follower's signal is the fast path; the periodic look at the index's version
        # also catches spans that another process indexed first (then our follower sees
        # nothing new to report). One small LMDB read, only while a page is listening.
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        last = None
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), CHECK_INTERVAL)
            except asyncio.TimeoutError:
                pass
            self._changed.clear()
            if not self._queues:
                continue
            counters = await loop.run_in_executor(None, views.counters, self._store)
            if counters["version"] != last:
                last = counters["version"]
                for queue in list(self._queues):
                    _offer(queue, counters)
                self.events_sent += 1
                await asyncio.sleep(MIN_INTERVAL)

    async def stop(self, app: web.Application | None = None) -> None:
        """Close every stream and stop following; safe to call twice."""
        for queue in list(self._queues):
            _offer(queue, None)
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 2.0)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """GET /api/events: `counters` now, then after each index change."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"})
        await response.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        loop = asyncio.get_running_loop()
        try:
            first = await loop.run_in_executor(None, views.counters, self._store)
            await response.write(_event("counters", first))
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if item is None:
                    break
                await response.write(_event("counters", item))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
        return response


def _offer(queue: asyncio.Queue, item: Any) -> None:
    """Put `item`, replacing an unread older one: a slow browser gets the latest state, not a backlog."""
    if queue.full():
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
    queue.put_nowait(item)


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
