"""The live terminal view of a `Watcher` frame (rich), and the loop that refreshes it.

`render(frame)` turns one frame into a rich renderable; `show(watcher, console)`
redraws it about once a second in place (rich `Live`, no flicker: one write per
refresh, cursor hidden) until Ctrl-C or `until()` says stop. `halo watch`
and `halo demo` both draw with these; there is no second panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from halo_live.engine.live import seconds

_TABLE = dict(title_justify="left", title_style="bold", expand=True, box=box.SIMPLE_HEAD, show_edge=False,
              pad_edge=False)
STATE_STYLE = {"running": "green", "stuck": "yellow", "abandoned": "red", "complete": "cyan"}


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _short(tokens: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if tokens >= size:
            return f"{tokens / size:.1f}{unit}"
    return str(tokens)


def usd(amount: float) -> str:
    """$12.34; cents would hide a small run's cost, so $0.0123 below a dollar."""
    if amount == 0 or abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.4f}" if abs(amount) >= 0.0001 else "<$0.0001"


def cost_text(cost: dict[str, Any]) -> Text:
    """`$12.34 (reported $2.00, estimated $10.34 at list prices)`."""
    reported, estimated = cost["reported_usd"], cost["estimated_usd"]
    if reported and estimated:
        how = f"reported {usd(reported)}, estimated {usd(estimated)} at list prices"
    elif reported:
        how = "reported by the spans"
    elif estimated:
        how = "estimated from tokens at list prices"
    else:
        how = "no cost reported, no priced tokens"
    return Text(f"{usd(cost['total_usd'])} ({how})")


def unpriced_text(unpriced: dict[str, int]) -> Text:
    """`unpriced: my-model 12.3k tokens` (the models with no list price, most tokens first)."""
    models = ", ".join(f"{model} {_short(tokens)} tokens" for model, tokens in list(unpriced.items())[:3])
    more = f" and {len(unpriced) - 3} more" if len(unpriced) > 3 else ""
    return Text(f"unpriced: {models}{more} (price them with --prices FILE)", style="yellow")


def headline(frame: dict[str, Any]) -> Text:
    """The status line: live / idle / waiting, and when."""
    status = frame["status"]
    at = (frame.get("at") or "")[11:19]
    if status == "waiting":
        what = (f"a trace file in {frame['path']}" if frame.get("waiting_for") == "files"
                else f"{frame['path']} to appear")
        return Text.assemble(("waiting", "bold yellow"), f" for {what} (the run may not have started yet)"
                             f"  {at} UTC")
    if status == "idle":
        return Text.assemble(("idle", "bold cyan"), f": no span written for {seconds(frame['idle_seconds'])}"
                             f" (the files stopped growing)  {at} UTC")
    if status == "stalled":
        return Text.assemble(("stalled", "bold yellow"), f": no span written for {seconds(frame['idle_seconds'])}"
                             f", {frame['traces']['stuck']} stuck, none running  {at} UTC")
    return Text.assemble(("live", "bold green"), f"  {at} UTC")


def _counts(frame: dict[str, Any]) -> Table:
    t, rates, errors = frame["traces"], frame.get("rates"), frame["errors"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    states = Text.assemble(f"{t['total']:,} = ", *[
        piece for state in ("complete", "running", "stuck", "abandoned")
        for piece in ((f"{t[state]:,} {state}", STATE_STYLE[state] if t[state] else "dim"), ("  ", ""))])
    if t.get("unwritten"):
        states.append(f"({t['unwritten']} with no span written yet)", style="dim")
    grid.add_row("traces", states)
    rate = (f"   {rates['spans_per_s']:,.1f} spans/s, {rates['traces_per_min']:,.1f} traces/min "
            f"(last {rates['window_seconds']:.0f} s)" if rates else "")
    grid.add_row("spans", f"{frame['spans']:,}{rate}")
    share = f" ({errors['share']:.0%} of traces)" if errors.get("share") is not None else ""
    grid.add_row("errors", Text(f"{errors['traces']:,} traces with an error span{share}",
                                style="red" if errors["traces"] else ""))
    tokens = frame["tokens"]
    grid.add_row("tokens", f"{_short(tokens['total'])} ({tokens['input']:,} in, {tokens['output']:,} out)")
    cost = frame.get("cost")
    if cost:
        grid.add_row("cost", cost_text(cost))
        if cost["unpriced"]:
            grid.add_row("", unpriced_text(cost["unpriced"]))
    outcomes = frame.get("outcomes")
    if outcomes:
        rate_text = "-" if outcomes["pass_rate"] is None else f"{outcomes['pass_rate']:.0%}"
        grid.add_row("pass rate", f"{rate_text} ({outcomes['passed']:,} passed, {outcomes['failed']:,} failed, "
                                  f"{outcomes['recorded']:,} with an outcome)")
    expect = frame.get("expect")
    if expect:
        eta = expect["eta_seconds"]
        when = "done" if eta == 0 else ("unknown yet" if eta is None else f"about {seconds(eta)}")
        grid.add_row("progress", f"{expect['done']:,}/{expect['tasks']:,} tasks, ETA {when}")
    return grid


def _open_tasks(frame: dict[str, Any], max_rows: int | None) -> Table:
    tasks = frame["open_tasks"]
    hidden = 0
    if max_rows is not None and len(tasks) > max_rows:
        tasks, hidden = tasks[:max_rows - 1], len(tasks) - max_rows + 1
    table = Table(title=f"tasks in flight, worst first (stuck: no span started or ended for "
                        f"{seconds(frame['stuck_after_seconds'])})", **_TABLE)
    table.add_column("state", no_wrap=True)
    table.add_column("trace id", no_wrap=True)
    table.add_column("doing", ratio=1)  # wraps: what a stuck task was doing is the point
    for task in tasks:
        if task["current_span"] is None:  # known from its spans only
            doing = Text(f"{task['doing']} {seconds(task['silent_seconds'])} ago")
        else:
            doing = Text(f"{task['doing']} for {seconds(task['for_seconds'])}")
        if task["why"] and task["state"] == "abandoned":
            doing.append(f" ({task['why']})", style=STATE_STYLE["abandoned"])
        table.add_row(Text(task["state"], style=STATE_STYLE[task["state"]]), task["trace_id"], doing)
    open_count = sum(frame["traces"][s] for s in ("running", "stuck", "abandoned"))
    hidden += max(0, open_count - len(frame["open_tasks"]))
    if hidden:
        table.add_row("", Text(f"... and {hidden} more", style="dim"), "")
    if not tasks:
        table.add_row("-", "none open", "")
    return table


def _signatures(frame: dict[str, Any]) -> Table:
    table = Table(title="top error signatures, by the failures they explain, then traces hit", **_TABLE)
    table.add_column("traces", justify="right", no_wrap=True)
    table.add_column("spans", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("span", no_wrap=True, overflow="ellipsis")
    table.add_column("status message", ratio=1, no_wrap=True, overflow="ellipsis")
    for sig in frame["signatures"]:
        table.add_row(_n(sig["traces"]), _n(sig["error_spans"]), _n(sig["failed_traces"]), sig["span_name"],
                      " ".join(sig["status_message"].split()))
    if not frame["signatures"]:
        table.add_row("-", "-", "-", "no errors yet", "")
    return table


def _failing(frame: dict[str, Any]) -> Table:
    table = Table(title="newest failing traces", **_TABLE)
    table.add_column("trace id", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("what failed", ratio=1, no_wrap=True, overflow="ellipsis")
    for item in frame["failing"]:
        table.add_row(item["trace_id"], item["start_time"][:19].replace("T", " "), item["what"])
    if not frame["failing"]:
        table.add_row("-", "", "none yet")
    return table


def render(frame: dict[str, Any], *, title: str | None = None, final: bool = False,
           height: int | None = None) -> Panel:
    """One frame as a panel: status, counts, open tasks, signatures, newest failures
    (`final`: the frame left on screen once the view ends, without the Ctrl-C hint; `height`:
    the terminal's, so the open tasks leave room for the signatures)."""
    parts: list[Any] = [headline(frame)]
    if frame["status"] != "waiting":
        rows = None if height is None else max(3, height - 30)
        parts += [_counts(frame), Text(""), _open_tasks(frame, rows), Text(""), _signatures(frame), Text(""),
                  _failing(frame)]
    return Panel(Group(*parts), title=title or f"halo watch {frame['path']}", title_align="left",
                 subtitle=None if final else "Ctrl-C to exit", subtitle_align="right")


def show(watcher: Any, console: Any, *, interval: float = 1.0, screen: bool = True,
         until: Callable[[], bool] | None = None, title: str | None = None) -> dict[str, Any]:
    """Redraw `watcher`'s frame in place every `interval` seconds; returns the last frame.

    Stops on Ctrl-C (`KeyboardInterrupt` is the caller's) or once `until()` is true (then
    one last frame is drawn). `screen=True` takes the whole terminal (the alternate screen).
    """
    from rich.live import Live

    frame = watcher.frame()
    next_at = time.monotonic() + interval
    with Live(render(frame, title=title, height=console.size.height), console=console, screen=screen,
              auto_refresh=False,
              transient=False, redirect_stdout=False, redirect_stderr=False) as view:
        while True:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at = time.monotonic() + interval
            done = until is not None and until()
            frame = watcher.frame()
            view.update(render(frame, title=title, final=done, height=console.size.height), refresh=True)
            if done:
                return frame
