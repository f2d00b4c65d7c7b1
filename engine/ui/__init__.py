"""`halo ui`: a live web view of the traces, served by aiohttp from this package.

`views` builds what only the page needs (run counters, a histogram, a span
outline, a span's conversation) from the index; `api` exposes those and the
trace tools of `halo_live.engine.tools` as JSON; `live` pushes index changes
as Server-Sent Events; `server` composes them with the static page, the
token check and the security headers. The page (`static/`) is hand-written
ES modules and CSS: no build step, nothing fetched from elsewhere.
"""
