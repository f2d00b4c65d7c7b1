"""The `halo ui` web server: the static page, the JSON API, live events, and the guards around them.

`UiServer(store, index, trace_path, host=..., port=0, token=...)` composes
them; `start()` serves on a thread of its own and returns the URL (tests and
benchmarks use it as it is), `serve_forever()` is the command's blocking form.

Guards, on every response: a strict Content-Security-Policy (scripts and
styles from this origin only: no inline script, no eval, no other host), no
sniffing, no referrer, no framing. With a token every request must carry it
(`?token=` once, which sets an HttpOnly cookie; or `Authorization: Bearer`);
a non-loopback address without a token is refused before binding. On a
loopback bind the Host header must name a loopback host, so a page on another
site cannot reach the server through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from halo_live.engine.store import TraceStore
from halo_live.engine.ui import api
from halo_live.engine.ui.live import LiveFeed

log = logging.getLogger(__name__)

TOKEN_ENV = "HALO_UI_TOKEN"
COOKIE = "halo_ui_token"
DEFAULT_HOST = "127.0.0.1"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
                ".png": "image/png"}
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def static_dir() -> Path:
    """The page's files, shipped inside the package."""
    return Path(str(resources.files("halo_live.engine.ui") / "static"))


@web.middleware
async def _headers(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = (web.Response(status=exc.status, headers=exc.headers) if exc.status < 400
                    else api.error(exc.reason or "error", exc.status))
    except Exception as exc:  # a bug, not the client's fault: one JSON line, logged once here
        log.exception("halo ui: %s %s failed", request.method, request.path)
        response = api.error(f"internal error: {type(exc).__name__}: {exc}", 500)
    if response.prepared:  # the event stream: it sent its headers itself, long ago
        return response
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    # the time spent server-side, for the browser's devtools and bench/bench_ui.py
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def _guard(token: str | None, loopback: bool):
    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        if loopback and (request.url.host or "").strip("[]") not in _LOOPBACK_NAMES:
            return api.error("this halo ui answers on a loopback host name only (127.0.0.1 or localhost)", 421)
        if token is None:
            return await handler(request)
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            # Trade the token in the URL for a cookie, and drop it from the address bar.
            kept = [(k, v) for k, v in request.query.items() if k != "token"]
            target = request.rel_url.with_query(kept) if request.method == "GET" else None
            response: web.StreamResponse = (web.Response(status=303, headers={"Location": str(target)})
                                             if target else await handler(request))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        bearer = request.headers.get("Authorization", "")
        candidates = [request.cookies.get(COOKIE, ""), bearer[7:] if bearer.startswith("Bearer ") else ""]
        if any(c and hmac.compare_digest(c.encode(), token.encode()) for c in candidates):
            return await handler(request)
        return api.error("this halo ui needs its token: open the URL it printed (with ?token=...) "
                         "or send 'Authorization: Bearer TOKEN'", 401)
    return guard


async def _index_html(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-cache"})


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = static_dir() / name
    if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in STATIC_TYPES:
        return api.error(f"no such file: {name}", 404)
    return web.FileResponse(path, headers={"Content-Type": STATIC_TYPES[path.suffix],
                                           "Cache-Control": "no-cache"})


def make_app(store: TraceStore, index: Any, trace_path: str, *, token: str | None = None,
             loopback: bool = True) -> web.Application:
    """The aiohttp application: page, API and events, behind the guards."""
    app = web.Application(middlewares=[_headers, _guard(token, loopback)])
    app[api.STORE] = store
    app[api.TRACE_PATH] = trace_path
    feed = LiveFeed(store, index)
    app.on_startup.append(feed.start)
    app.on_shutdown.append(feed.stop)
    app.router.add_get("/", _index_html)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/events", feed.stream)
    api.add_routes(app)
    return app


class UiServer:
    """`halo ui`'s server, on its own event loop thread (`start()`/`stop()`) or blocking."""

    def __init__(self, store: TraceStore, index: Any, trace_path: str, *, host: str = DEFAULT_HOST,
                 port: int = 0, token: str | None = None) -> None:
        token = token or None
        if not is_loopback(host) and token is None:
            raise ValueError(f"refusing to serve on {host}: a non-loopback address needs a token "
                             f"(--token or ${TOKEN_ENV})")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        self.host, self.port, self.token = host, port, token
        self.app = make_app(store, index, trace_path, token=token, loopback=is_loopback(host))
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    async def _start(self) -> str:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/" + (f"?token={self.token}" if self.token else "")
        return self.url

    def start(self) -> str:
        """Serve on a background thread; returns the URL (with `?token=` when there is one)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="halo-ui", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.url

    def stop(self) -> None:
        """Stop serving (streams closed, follower stopped); safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._thread = None

    def serve_forever(self, on_ready=None) -> None:
        """Serve until interrupted (Ctrl-C); `on_ready(url)` runs once the port is bound."""
        async def main() -> None:
            url = await self._start()
            if on_ready is not None:
                on_ready(url)
            try:
                await asyncio.Event().wait()
            finally:
                await self._runner.cleanup()
        asyncio.run(main())
