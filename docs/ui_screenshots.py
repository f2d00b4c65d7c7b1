"""Take the README's screenshots of `halo ui` with headless Chromium (Playwright).

    halo demo --no-ask                          # traces in halo-demo/baseline/
    python docs/ui_screenshots.py halo-demo/baseline docs/

Starts `halo ui` on a free port, opens the Run page, the Traces page filtered
to traces with errors, and the first such trace with its last LLM call open.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace_path")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    proc = subprocess.Popen([sys.executable, "-m", "halo_live", "ui", args.trace_path, "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().rsplit(" at ", 1)[1].strip()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(url)
            page.wait_for_selector(".signatures tbody tr")
            page.screenshot(path=str(args.out_dir / "ui-run.png"))
            page.goto(url + "#/traces?errors=true")
            page.wait_for_selector("#traces-body tr")
            page.screenshot(path=str(args.out_dir / "ui-traces.png"))
            page.click("#traces-body tr a")
            page.wait_for_selector(".tree .row.err")
            page.click(".tree .row.err")
            page.wait_for_selector(".detail .status-message")
            llm = page.locator(".tree .row:has(.k-LLM)").last
            llm.click()
            page.wait_for_selector(".conversation .msg")
            page.screenshot(path=str(args.out_dir / "ui-trace.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
