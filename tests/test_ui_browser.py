"""`halo ui` in a real browser: Debian's Chromium driven by Playwright, against a real
`halo ui` process. Outside CI these skip when Chromium or Playwright is missing; in CI
(CI=true) they fail instead, so they always run there (.ci/run installs Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from halo_live.engine.tools import open_store, run_tool
from tests import _ui_helpers as ui

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000


def chromium_path() -> str | None:
    for candidate in (os.environ.get("HALO_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-headless-shell"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _unavailable(why: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.problems = []  # CSP violations and script errors the page met
    pg.on("pageerror", lambda exc: pg.problems.append(f"pageerror: {exc}"))
    pg.on("console", lambda m: pg.problems.append(f"console: {m.text}") if m.type == "error" else None)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return ui.write_dataset(tmp_path_factory.mktemp("uib") / "traces.jsonl", traces=60, big=True)


@pytest.fixture(scope="module")
def served(dataset):
    with ui.UiProcess(dataset) as proc:
        yield proc


def expect_text(page, selector: str, pattern: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_text(re.compile(pattern), timeout=WAIT_MS)


def test_run_counters_grow_while_another_process_appends_spans(page, tmp_path):
    path = ui.write_dataset(tmp_path / "live.jsonl", traces=20)
    with open_store(path) as store:
        before = run_tool(store, "get_dataset_overview", {})["result"]
    with ui.UiProcess(path) as proc:
        page.goto(proc.url)
        expect_text(page, "[data-counter=traces]", f"^{before['total_traces']}$")
        expect_text(page, "#live", "live")
        script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]); "
                  "from tests._ui_helpers import append_traces; "
                  "[append_traces(Path(sys.argv[1]), 100 + 10 * i, 10) for i in range(3)]")
        subprocess.run([sys.executable, "-c", script, str(path), os.getcwd()], check=True, timeout=120)
        with open_store(path) as store:
            after = run_tool(store, "get_dataset_overview", {})["result"]
        assert after["total_traces"] == before["total_traces"] + 30
        expect_text(page, "[data-counter=traces]", f"^{after['total_traces']}$")
        expect_text(page, "[data-counter=spans]", f"^{after['total_spans']:,}$")
        # the histogram and signatures followed too, without a reload
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.problems == []


def test_a_filter_narrows_the_table_to_the_right_count(page, served, dataset):
    with open_store(dataset) as store:
        total = run_tool(store, "count_traces", {})["result"]["total"]
        errors = run_tool(store, "count_traces", {"filters": {"has_errors": True}})["result"]["total"]
        forecaster = run_tool(store, "count_traces", {"filters": {"agent_names": ["forecaster"]}})["result"]["total"]
    page.goto(served.url + "#/traces")
    expect_text(page, "#traces-status", rf"^1–50 of {total} · following latest$")
    page.select_option("select[name=errors]", "true")
    expect_text(page, "#traces-status", rf"of {errors}\b")
    assert "errors=true" in page.url
    assert page.locator("#traces-body tr").count() == min(errors, 50)
    assert page.locator("#traces-body tr:not(.err)").count() == 0
    page.select_option("select[name=agent]", "forecaster")
    expect_text(page, "#traces-status", rf"^1–{forecaster} of {forecaster}\b")
    assert page.locator("#traces-body tr").get_attribute("data-trace-id") == ui.CHAT_TRACE
    assert page.problems == []


def test_follow_latest_keeps_the_newest_on_top_and_pause_holds_still(page, tmp_path):
    path = ui.write_dataset(tmp_path / "follow.jsonl", traces=10)
    with ui.UiProcess(path) as proc:
        page.goto(proc.url + "#/traces")
        expect_text(page, "#traces-status", "following latest")
        first = page.locator("#traces-body tr").first.get_attribute("data-trace-id")
        page.click("#pause")
        expect_text(page, "#traces-status", "paused")
        ui.append_traces(path, 500, 3)
        with open_store(path) as store:
            traces = run_tool(store, "query_traces", {"limit": 500})["result"]["traces"]
            newest = max(traces, key=lambda t: t["start_time"])["trace_id"]
            total = run_tool(store, "count_traces", {})["result"]["total"]
        page.wait_for_selector(f"#live[data-traces='{total}']")  # the push arrived; the table held still
        assert page.locator("#traces-body tr").first.get_attribute("data-trace-id") == first
        page.click("#pause")
        page.wait_for_function(
            "id => document.querySelector('#traces-body tr').dataset.traceId === id", arg=newest)
    assert page.problems == []


def test_clicking_a_trace_shows_its_tree_the_error_span_and_the_conversation(page, served):
    page.goto(served.url + "#/traces?agent=forecaster")
    page.click(f"#traces-body tr[data-trace-id='{ui.CHAT_TRACE}'] a")
    page.wait_for_url(re.compile(f"#/trace/{ui.CHAT_TRACE}$"))
    rows = page.locator(".tree .row")
    expect_text(page, ".trace-head .facts", "3 spans")
    assert rows.count() == 3
    errors = page.locator(".tree .row.err")
    assert errors.count() == 1 and errors.get_attribute("data-span-id") == ui.CHAT_TOOL_SPAN
    assert errors.locator(".err-mark").inner_text() == "error"
    # without a span in the URL, the conversation of the trace's LLM call is open
    messages = page.locator(".conversation .msg")
    messages.first.wait_for()
    assert [m.get_attribute("data-role") for m in messages.all()] == ["system", "user", "assistant", "tool", "assistant"]
    assert "get_weather" in messages.nth(2).inner_text() and "Paris" in messages.nth(2).inner_text()
    assert ui.TOOL_ERROR in messages.nth(3).inner_text()
    # the error span: its status message and attributes
    errors.click()
    page.wait_for_url(re.compile(f"/span/{ui.CHAT_TOOL_SPAN}$"))
    expect_text(page, ".detail .status-message", re.escape(ui.TOOL_ERROR))
    page.click("[data-tab=attributes]")
    expect_text(page, ".detail [data-pane=attributes]", "get_weather")
    assert page.problems == []


def test_a_deep_link_opens_the_same_span(page, served):
    link = f"{served.url}#/trace/{ui.CHAT_TRACE}/span/{ui.CHAT_TOOL_SPAN}"
    page.goto(link)
    selected = page.locator(".tree .row.selected")
    selected.wait_for()
    assert selected.get_attribute("data-span-id") == ui.CHAT_TOOL_SPAN
    expect_text(page, ".detail h2", ui.CHAT_TOOL_SPAN)
    command = page.locator(".command").inner_text()
    assert command.startswith("halo tool view_spans ") and ui.CHAT_TOOL_SPAN in command
    page.click("[data-tab=raw]")
    expect_text(page, ".detail .raw", f'"span_id": "{ui.CHAT_TOOL_SPAN}"')
    assert page.problems == []


def test_hostile_content_shows_as_text_and_runs_nothing(page, served):
    page.on("dialog", lambda d: page.problems.append(f"dialog: {d.message}"))
    page.goto(f"{served.url}#/trace/{ui.HOSTILE_TRACE}/span/{ui.HOSTILE_SPAN}")
    expect_text(page, ".detail h2", re.escape(f"fetch {ui.XSS_SCRIPT}"))
    expect_text(page, ".detail .status-message", re.escape(ui.XSS_IMG))
    expect_text(page, ".conversation .msg-text", re.escape(ui.XSS_IMG))
    page.click("[data-tab=attributes]")
    expect_text(page, ".detail [data-pane=attributes]", re.escape(ui.XSS_IMG + ui.XSS_SCRIPT))
    page.click("[data-tab=raw]")
    page.goto(f"{served.url}#/traces?q=window.__pwned")
    expect_text(page, "#traces-status", "^1–1 of 1")
    page.goto(f"{served.url}#/trace/{ui.HOSTILE_TRACE}")
    expect_text(page, ".tree", re.escape(f"agent {ui.XSS_IMG}"))
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0
    assert page.problems == []


def test_a_trace_of_2000_spans_renders_whole(page, served):
    page.goto(f"{served.url}#/trace/{ui.BIG_TRACE}")
    expect_text(page, ".trace-head .facts", "2,000 spans")
    page.locator(".tree .row").nth(1999).wait_for(state="attached")
    assert page.locator(".tree .row").count() == 2000
    assert page.locator(".tree .row.err").count() == len([i for i in range(1999) if i % 20 and i % 97 == 0])
    page.locator(".tree .row").nth(1500).click()  # still answers clicks
    page.wait_for_url(re.compile("/span/"))
    assert page.problems == []


def test_a_request_without_the_token_is_refused_when_a_token_is_set(page, dataset):
    with ui.UiProcess(dataset, env={"HALO_UI_TOKEN": "t0ken"}) as proc:
        assert proc.url == proc.base + "?token=t0ken"
        response = page.goto(proc.base + "#/traces")
        assert response.status == 401 and "needs its token" in page.inner_text("body")
        assert page.request.get(proc.base + "api/run").status == 401
        page.goto(proc.url + "#/traces")  # the printed URL: the token becomes a cookie
        assert "token" not in page.url and page.url.endswith("#/traces")
        expect_text(page, "#traces-status", "of 63")
        assert page.request.get(proc.base + "api/run").status == 200


def test_a_trace_in_progress_grows_in_place(page, tmp_path):
    path = tmp_path / "growing.jsonl"
    children, root = ui.chat_trace()[:2], ui.chat_trace()[2]
    path.write_bytes(b"".join(children))
    with ui.UiProcess(path) as proc:
        page.goto(f"{proc.url}#/trace/{ui.CHAT_TRACE}")
        expect_text(page, ".trace-head .facts", "2 spans.*in progress")
        assert page.locator(".tree .row").count() == 2
        with path.open("ab") as fh:
            fh.write(root)
        expect_text(page, ".trace-head .facts", "3 spans.*complete")
        assert page.locator(".tree .row").count() == 3
        assert page.locator(".tree .row").first.get_attribute("data-span-id") == "11110000aaaa0000"
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.problems == []


def test_a_signature_links_to_its_traces_and_a_header_sorts(page, served):
    page.goto(served.url)
    first = page.locator(".signatures tbody tr").first
    first.wait_for()
    traces_hit = int(first.locator("td").first.inner_text().replace(",", ""))
    first.locator("a.sig-link").click()
    page.wait_for_url(re.compile(r"#/traces\?sig_name="))
    expect_text(page, "#traces-status", rf"of {traces_hit}\b")
    assert page.locator("#traces-body tr:not(.err)").count() == 0
    page.goto(served.url + "#/traces")
    page.click("th.sortable:has-text('spans')")
    page.wait_for_url(re.compile("sort=spans"))
    expect_text(page, "#traces-body tr:first-child td:nth-child(5)", "^2,000$")
    assert page.problems == []


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    path = ui.write_outcome_dataset(tmp_path_factory.mktemp("uio") / "outcomes.jsonl")
    with ui.UiProcess(path) as proc:
        yield proc, path


def test_the_run_page_shows_the_pass_rate_once_outcomes_exist(page, outcomes, served):
    proc, path = outcomes
    with open_store(path) as store:
        passed = run_tool(store, "count_traces", {"filters": {"outcome": "passed"}})["result"]["total"]
        failed = run_tool(store, "count_traces", {"filters": {"outcome": "failed"}})["result"]["total"]
    assert passed and failed
    page.goto(proc.url)
    expect_text(page, "[data-counter=pass_rate]", rf"^{passed / (passed + failed) * 100:.1f}%$")
    page.goto(served.url)  # a run without outcomes says so with a dash
    expect_text(page, "[data-counter=traces]", r"^\d+$")
    expect_text(page, "[data-counter=pass_rate]", "^—$")
    assert page.problems == []


def test_the_outcome_filter_narrows_the_table_to_count_traces(page, outcomes):
    proc, path = outcomes
    with open_store(path) as store:
        count = {status: run_tool(store, "count_traces", {"filters": {"outcome": status}})["result"]["total"]
                 for status in ("passed", "failed", "unknown")}
    page.goto(proc.url + "#/traces")
    expect_text(page, "#traces-status", "following latest")
    for status in ("failed", "passed", "unknown"):
        page.select_option("select[name=outcome]", status)
        expect_text(page, "#traces-status", rf"^1–{min(count[status], 50)} of {count[status]}\b")
        assert f"outcome={status}" in page.url
        cells = page.locator("#traces-body td.outcome")
        assert cells.count() == min(count[status], 50)
        assert {c.get_attribute("data-outcome") for c in cells.all()} == {status}
    page.select_option("select[name=outcome]", "failed")
    expect_text(page, "#traces-status", rf"of {count['failed']}\b")
    row = page.locator(f"#traces-body tr[data-trace-id='{ui.FAILED_TRACE}']")
    assert row.locator("td.outcome").inner_text() == "failed"
    assert "score 0.25" in row.locator("td.outcome").get_attribute("title")
    assert page.problems == []


def test_the_trace_page_of_a_failed_task_shows_it_failed(page, outcomes):
    proc, _ = outcomes
    page.on("dialog", lambda d: page.problems.append(f"dialog: {d.message}"))
    page.goto(f"{proc.url}#/traces?outcome=failed")
    page.click(f"#traces-body tr[data-trace-id='{ui.FAILED_TRACE}'] a")
    page.wait_for_url(re.compile(f"#/trace/{ui.FAILED_TRACE}$"))
    box = page.locator(".trace-head .outcome-box")
    expect_text(page, ".trace-head .outcome-status", "^failed$")
    assert box.get_attribute("data-outcome") == "failed"
    facts = box.locator(".outcome-facts").inner_text()
    assert "task task-17" in facts and "score 0.25" in facts and "wrong answer" in facts
    assert box.locator(".outcome-explanation").inner_text() == ui.FAILED_EXPLANATION  # as text
    box.locator("a").click()  # the outcome span itself
    page.wait_for_url(re.compile(f"#/trace/{ui.FAILED_TRACE}/span/verdict$"))
    expect_text(page, ".tree .row.selected", "gen_ai.evaluation.result|evaluation")
    assert page.evaluate("window.__pwned") is None and page.locator("main img").count() == 0
    page.goto(f"{proc.url}#/trace/{ui.CHAT_TRACE}")  # a trace without an outcome shows none
    expect_text(page, ".trace-head .facts", "3 spans")
    assert page.locator(".outcome-box").count() == 0
    assert page.problems == []


def test_a_search_that_stops_early_shows_n_plus_and_count_all_gives_count_traces(page, served, dataset):
    with open_store(dataset) as store:
        total = run_tool(store, "count_traces", {"filters": {"regex_pattern": "trace_id"}})["result"]["total"]
    assert total > 51
    page.goto(f"{served.url}#/traces?q=trace_id")
    expect_text(page, "#traces-status", r"^1–50 of 51\+ ")  # the page and one more were read
    page.click("#count-all")
    expect_text(page, "#traces-status", rf"^1–50 of {total} ")
    assert page.locator("#count-all").is_hidden()
    assert page.problems == []
