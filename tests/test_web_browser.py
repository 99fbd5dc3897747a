"""The dashboard in a real browser: Playwright driving the system's Chromium
against the dashboard served by uvicorn, on a real Redis with jobs in every state.

Chromium comes from the system packages (``tests/run.sh`` runs ``apt-get
install chromium`` when missing, as root); Playwright never downloads a
browser. Without Chromium these tests skip, saying why -- unless
``SCHEDULER_REQUIRE_BROWSER=1`` (set by ``tests/run.sh`` where it could install
Chromium), where a missing browser fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the web extra")
pytest.importorskip("playwright", reason="Playwright (test dependency group) is not installed")

from playwright.sync_api import Browser, Page, expect, sync_playwright

from scheduler import Scheduler
from scheduler.backend.record import JobState
from scheduler.web import WebAuth, create_app
from tests.helpers import wait_until
from tests.web_helpers import EVIL, Population, chromium_path, populate, serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        reason = (
            "no Chromium found (Debian: apt-get install chromium; tests/run.sh does it as root)"
        )
        if os.environ.get("SCHEDULER_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def site(real_app: Scheduler) -> Iterator[tuple[str, Population]]:
    pop = populate(real_app)
    with serving(create_app(real_app, auth=WebAuth(), refresh=0.5)) as url:
        yield url, pop


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())  # confirm() of every action
    errors: list[Any] = []

    def on_error(error: Any) -> None:  # Playwright needs a Python function, not a builtin
        errors.append(error)

    tab.on("pageerror", on_error)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, errors  # no JavaScript error on any page


def test_overview_filter_open_retry_and_pause(
    page: Page, site: tuple[str, Population], real_app: Scheduler
) -> None:
    base, _pop = site
    page.goto(base + "/")
    rows = page.locator("#queues tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator('tr[data-queue="emails"] td.name')).to_have_text("emails")
    expect(page.locator("#workers")).to_contain_text("host-a")
    # Auto-refresh replaces the region without reloading the page.
    page.evaluate("window.__marker = 1")
    page.wait_for_function(
        "document.getElementById('overview').hasAttribute('data-refreshed')", timeout=10_000
    )
    assert page.evaluate("window.__marker") == 1

    # Filter jobs: the queue's dead jobs, then a search.
    page.click('tr[data-queue="emails"] td.name a')
    page.click('.tabs a[data-state="dead"]')
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    page.fill('input[name="q"]', "user1@")
    page.click(".search button")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)

    # Open the job, retry it, see its state change.
    page.click('tr[data-job="dead-1"] a')
    expect(page.locator("h1 .state")).to_have_text("dead")
    expect(page.locator("#traceback")).to_contain_text("550 mailbox unavailable")
    expect(page.locator("#timeline")).to_contain_text("dead")
    page.click("button:has-text('Retry')")
    expect(page.locator("h1 .state")).to_have_text("ready")
    expect(page.locator(".flash")).to_contain_text("retry: done")
    assert real_app.job("dead-1", "emails").status is JobState.READY

    # Pause a queue from the overview.
    page.goto(base + "/")
    page.click('tr[data-queue="emails"] button:has-text("Pause")')
    expect(page.locator('tr[data-queue="emails"] .paused-state')).to_have_text("paused")
    assert real_app.backend.queue_snapshots(["emails"])[0].paused


def test_script_in_arguments_shows_as_text(page: Page, site: tuple[str, Population]) -> None:
    base, pop = site
    page.goto(f"{base}/queues/emails/jobs/{pop.evil}")
    expect(page.locator("#args")).to_contain_text(EVIL)
    assert page.evaluate("typeof window.alertCalled") == "undefined"
    assert page.locator("script:not([src])").count() == 0


def test_bulk_cancel_shows_progress_until_done(
    page: Page, site: tuple[str, Population], real_app: Scheduler
) -> None:
    base, _pop = site
    page.goto(f"{base}/queues/emails?state=ready")
    page.click("form.bulk button:has-text('Cancel all')")
    expect(page.locator(".bulk-status")).to_contain_text("finished")
    expect(page.locator("progress")).to_have_attribute("value", "100")
    wait_until(lambda: real_app.backend.job_set_size("emails", "ready") == 0)
