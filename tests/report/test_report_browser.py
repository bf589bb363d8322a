"""The HTML report in headless Chromium: plots load, hostile trace text stays text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hivethink.report import build_report

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)]  # a real browser


@pytest.mark.timeout(60)
def test_report_in_headless_chromium(run_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    path = build_report(run_dir)
    dialogs: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            widths = page.evaluate(
                "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
            )
            assert len(widths) >= 3 and all(w > 0 for w in widths)
            assert page.evaluate("document.scripts.length") == 0
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            text = page.inner_text("body")
            assert page.evaluate("window.__pwned === undefined")
        finally:
            browser.close()
    assert dialogs == []
    assert "<script>alert(1)</script>" in text
    assert '<img src=x onerror="window.__pwned=1">' in text
