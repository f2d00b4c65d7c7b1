"""`halo ui`'s server-side API timings on a dataset (default: the 50k-trace synthetic set).

Starts the server in this process on a free port, calls each endpoint the
pages use over HTTP, and prints the median of the server's own `Server-Timing`
(time inside the handler, index reads included, network and browser excluded)
and the first call's, with the data size and the machine.

    python bench/gen_traces.py /tmp/t50k.jsonl            # 50k traces, ~3.3 GB
    python bench/bench_ui.py /tmp/t50k.jsonl --repeat 7
    python bench/bench_ui.py --big-trace 2000       # the Trace page in Chromium on one trace of 2,000 spans
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from halo_live.engine.tools import open_store  # noqa: E402
from halo_live.engine.ui import api  # noqa: E402
from halo_live.engine.ui.server import UiServer  # noqa: E402
from halo_live.indexer import TraceIndex  # noqa: E402


def call(base: str, path: str, params: dict | None = None) -> tuple[float, dict]:
    url = base + path.lstrip("/") + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    with urllib.request.urlopen(url, timeout=600) as response:
        timing = response.headers["Server-Timing"]
        body = json.loads(response.read())
    return float(timing.split("dur=")[1]), body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace_path", nargs="?")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--big-trace", type=int, default=0, metavar="SPANS",
                        help="instead: time the Trace page in headless Chromium on one trace of SPANS spans")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    if args.big_trace:
        return big_trace(args.big_trace, args.chromium, args.repeat)
    if not args.trace_path:
        parser.error("give TRACE_PATH (or --big-trace SPANS)")

    store = open_store(args.trace_path)
    index = TraceIndex.open(args.trace_path)
    server = UiServer(store, index, args.trace_path)
    base = server.start()
    try:
        start = time.perf_counter()  # the sort keys' background warm-up, measured on its own below
        while not server.app[api.SORT_KEYS].ready:
            time.sleep(0.01)
        print(f"sort keys warmed {time.perf_counter() - start:.2f} s after the server started; timing from now")
        _, run = call(base, "/api/run")
        _, newest = call(base, "/api/traces", {"limit": 50})
        busiest = max(newest["traces"], key=lambda t: t["span_count"])
        tid = busiest["trace_id"]
        _, outline = call(base, f"/api/trace/{tid}/outline")
        sid = next((s["span_id"] for s in outline["spans"] if s["kind"] == "LLM"), outline["spans"][0]["span_id"])
        sig = run["signatures"][0] if run["signatures"] else {"span_name": "", "status_message": ""}
        facets = run["facets"]
        cases = [
            ("Run page: counters, signatures, histogram", "/api/run", None),
            ("Traces page, first render (latest 50)", "/api/traces", {"limit": 50}),
            ("Traces: page 500 of 1,000", "/api/traces", {"limit": 50, "offset": 25_000}),
            ("Traces: with errors", "/api/traces", {"errors": "true"}),
            ("Traces: model + agent", "/api/traces", {"model": facets["model_names"][:1], "agent": facets["agent_names"][:1]}),
            ("Traces: tool + service", "/api/traces", {"tool": facets["tool_names"][:1], "service": facets["service_names"][:1]}),
            ("Traces: time range (from)", "/api/traces", {"since": run["histogram"]["edges"][len(run["histogram"]["edges"]) // 2]}),
            ("Traces: sorted by duration", "/api/traces", {"sort": "duration"}),
            ("Traces: one error signature", "/api/traces", {"sig_name": sig["span_name"], "sig_message": sig["status_message"]}),
            ("Traces: text search, narrowed by model+agent+errors", "/api/traces",
             {"q": "MaxTurnsExceeded", "errors": "true", "model": facets["model_names"][:1], "agent": facets["agent_names"][:1]}),
            ("Traces: text search, no filter (stops at the page + 1)", "/api/traces", {"q": "STATUS_CODE_ERROR"}),
            ("Traces: same search, errors only, exact=1 (count all)", "/api/traces",
             {"q": "STATUS_CODE_ERROR", "errors": "true", "exact": "1"}),
            ("Trace page: outline", f"/api/trace/{tid}/outline", None),
            ("Trace page: one span (view_spans + raw + conversation)", f"/api/trace/{tid}/span/{sid}", None),
            ("tool: get_dataset_overview", "/api/tools/get_dataset_overview", None),
            ("tool: count_traces (errors)", "/api/tools/count_traces", {"args": json.dumps({"filters": {"has_errors": True}})}),
        ]
        t = run["counters"]
        print(f"halo ui API, server-side time (Server-Timing) on {args.trace_path}: {t['traces']:,} traces, "
              f"{t['spans']:,} spans, {t['raw_jsonl_bytes'] / 1e6:,.1f} MB; {platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}; median of {args.repeat}")
        print(f"{'call':58s} {'median ms':>10s} {'first ms':>10s}")
        for name, path, params in cases:
            times = [call(base, path, params)[0] for _ in range(args.repeat)]
            print(f"{name:58s} {statistics.median(times):10.1f} {times[0]:10.1f}")
        print(f"trace of the outline: {busiest['span_count']} spans")
        warm, cold, during = [], [], []
        for _ in range(args.repeat):  # what `halo ui` does in the background at start and per index change
            keys = api.SortKeys()
            start = time.perf_counter()
            keys.warm(store)
            warm.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()  # a first sort with no warm-up at all: the request takes the pass
            api.traces_page(store, {}, "duration", 50, 0, sort_keys=api.SortKeys())
            cold.append((time.perf_counter() - start) * 1000)
            keys = api.SortKeys()  # a first sort as the warm-up starts: it waits for the warm-up's pass
            warming = threading.Thread(target=keys.warm, args=(store,))
            warming.start()
            start = time.perf_counter()
            api.traces_page(store, {}, "duration", 50, 0, sort_keys=keys)
            during.append((time.perf_counter() - start) * 1000)
            warming.join()
        print(f"sort keys warm-up (background, not a request): {statistics.median(warm):.1f} ms; "
              f"sorted by duration, in process: with no keys {statistics.median(cold):.1f} ms (max {max(cold):.1f}), "
              f"as the warm-up starts {statistics.median(during):.1f} ms (max {max(during):.1f})")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.stop()
        index.close()
        store.close()
    return 0


def big_trace(spans: int, chromium: str, repeat: int) -> int:
    """Open a trace of `spans` spans in headless Chromium: time to a drawn tree, and the longest
    task the main thread ran meanwhile (what a user would feel as a freeze)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from tests._ui_helpers import BIG_TRACE, big_trace as lines

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        path.write_bytes(b"".join(lines(spans)))
        store = open_store(path)
        index = TraceIndex.open(path)
        server = UiServer(store, index, str(path))
        base = server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run"])
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script("window.__long = 0; new PerformanceObserver((l) => { for (const e of "
                                     "l.getEntries()) window.__long = Math.max(window.__long, e.duration); })"
                                     ".observe({type: 'longtask', buffered: true});")
                drawn, longest = [], []
                for _ in range(repeat):
                    page.goto(base + "#/")
                    page.wait_for_selector("[data-counter=traces]")
                    start = page.evaluate("performance.now()")
                    page.evaluate(f"location.hash = '#/trace/{BIG_TRACE}'")
                    page.wait_for_function("n => document.querySelectorAll('.tree .row').length === n", arg=spans)
                    drawn.append(page.evaluate("performance.now()") - start)
                    longest.append(page.evaluate("window.__long"))
                browser.close()
        finally:
            server.stop()
            index.close()
            store.close()
    print(f"Trace page, one trace of {spans:,} spans, headless Chromium, {os.cpu_count()} CPUs; median of {repeat}:")
    print(f"  navigation to a drawn tree + waterfall: {statistics.median(drawn):.0f} ms "
          f"(outline fetch included); longest main-thread task: {statistics.median(longest):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
