"""Screenshots of the committed interactive pages, taken in headless Chromium (the system's, driven by playwright).

python benchmarks/html_screenshot.py

writes ``reports/report/report_html.png`` (the trade-off chart of ``reports/report/report.html``, GMACs axis) and
``reports/history/history.png`` (``reports/history/history.html``: peak memory relative to the first run, only the
configurations that changed). Chromium: ``$VBENCH_CHROMIUM`` or ``chromium`` on the PATH (``apt-get install
chromium``); playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("VBENCH_CHROMIUM") or shutil.which("chromium")
    if exe is None:
        print("no Chromium: apt-get install chromium, or set VBENCH_CHROMIUM", file=sys.stderr)
        return 2
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        for page, png, ready in (
            ("reports/report/report.html", "reports/report/report_html.png", "#tradeoff .scatterlayer path.point"),
            ("reports/history/history.html", "reports/history/history.png", "#history .scatterlayer .trace"),
        ):
            tab = browser.new_page(viewport={"width": 1300, "height": 1000})
            errors: list[str] = []
            tab.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            tab.goto((ROOT / page).as_uri())
            tab.wait_for_selector(ready)
            if "history" in page:
                tab.select_option("#metric", "peak_mem_mib")
                tab.check("#relative")
                tab.check("#changed")
            tab.screenshot(path=str(ROOT / png))
            if errors:
                print(f"{page}: {errors[0]}", file=sys.stderr)
                return 1
            print(f"wrote {png}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
