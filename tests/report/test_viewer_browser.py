"""The trace viewer in headless Chromium: open a run, filter, open traces, screenshot.

Both ways of opening it: the written view.html (traces inside) and the local server (traces
fetched one at a time). ``HIVETHINK_VIEWER_SCREENSHOT=PATH`` keeps the screenshot there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_report_browser import ARGS, CHROMIUM  # noqa: E402
from viewer_run import write_run  # noqa: E402

from hivethink.report.viewer import ViewerServer, write_viewer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)]  # a real browser


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--disable-quic"])
        try:
            yield browser
        finally:
            browser.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append("dialog: " + d.message), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#samples tbody tr")
    return page, problems


def _shown_keys(page) -> list[str]:
    return page.eval_on_selector_all("#samples tbody tr", "rows => rows.map(r => r.dataset.key)")


def _exercise(page) -> None:
    """Filter, then open a shared-cache trace and a text-protocol trace."""
    assert _shown_keys(page) == ["a1", "b2", "c3", "d4"]
    assert page.inner_text("#count") == "4 of 4 samples"
    page.select_option("#f-substrate", "debate")
    assert _shown_keys(page) == ["b2", "d4"] and page.inner_text("#count") == "2 of 4 samples"
    page.select_option("#f-score", "failed")
    assert _shown_keys(page) == ["d4"]
    page.select_option("#f-substrate", "")
    page.select_option("#f-score", "solved")
    assert _shown_keys(page) == ["a1", "c3"]
    page.select_option("#f-workers", "3")
    assert _shown_keys(page) == ["c3"]
    page.select_option("#f-workers", "")
    page.select_option("#f-task", "math")
    assert _shown_keys(page) == ["a1"]

    # the shared-cache trace: workers side by side, rows of forward passes
    page.click("#samples tbody tr[data-key=a1]")
    page.wait_for_selector("#trace .passes")
    heads = page.eval_on_selector_all("#trace .passes .head", "els => els.map(e => e.textContent)")
    assert heads == ["passes", "Alice", "Bob"]
    assert page.eval_on_selector_all("#trace .prow", "els => els.map(e => e.textContent)") == ["0–2", "3–6"]
    trace_text = page.inner_text("#trace")
    assert "redundant? yes" in trace_text and "answer: 391" in trace_text
    assert "loops 2" in trace_text and "score 1" in trace_text
    # hostile model text is text: shown literally, nothing ran, no element was made of it
    assert '<script>alert(1)</script><img src=x onerror="window.__pwned=1"></pre>' in trace_text
    assert page.evaluate("document.querySelectorAll('#trace img, #trace script').length") == 0
    forced = page.eval_on_selector_all("#trace .forced", "els => els.map(e => e.textContent)")
    assert "**Alice [1]:** " in forced and "Am I redundant? " in forced

    # a text protocol: rounds, who sent what to whom, who saw it
    page.select_option("#f-task", "")
    page.click("#samples tbody tr[data-key=c3]")
    page.wait_for_selector("#trace .round")
    rounds = page.eval_on_selector_all("#trace .round h3", "els => els.map(e => e.textContent)")
    assert rounds == ["Round 0", "Round 1", "Answers"]
    text = page.inner_text("#trace")
    assert "→ Bob · seen by: Bob" in text and "→ Carol · seen by: Carol" in text
    assert "held texts of: Bob" in text and "format_failures 1" in text
    assert page.evaluate("window.__pwned === undefined")


def test_viewer_file_in_chromium(browser, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    page, problems = _open(browser, write_viewer(run).as_uri())
    _exercise(page)
    page.click("#samples tbody tr[data-key=a1]")
    page.wait_for_selector("#trace .passes")
    shot = Path(os.environ.get("HIVETHINK_VIEWER_SCREENSHOT") or tmp_path / "viewer.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems == []


def test_viewer_served_in_chromium(browser, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    server = ViewerServer(run, port=0)
    server.start()
    try:
        page, problems = _open(browser, server.url)
        assert page.evaluate("JSON.parse(document.getElementById('hivethink-data').textContent).traces") is None
        _exercise(page)  # the traces come from /api/trace/KEY
        page.goto(server.url + "#sample=d4")  # a deep link opens that sample
        page.wait_for_selector("#trace pre.error")
        assert "RuntimeError: <script>" in page.inner_text("#trace pre.error")
        assert problems == []
    finally:
        server.shutdown()
        server.server_close()
