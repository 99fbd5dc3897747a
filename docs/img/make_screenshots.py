"""Screenshots of the dashboard's main pages for docs/operating.md.

Run from the repository root (needs the ``web`` extra, Playwright and the
system Chromium, as for the browser tests)::

    .venv/bin/python docs/img/make_screenshots.py

It starts a throwaway Redis-compatible server, fills it with jobs in every
state (``tests/web_helpers.populate``), runs a worker on a third queue for a
few seconds so the throughput chart has something to show, serves the
dashboard with uvicorn and saves ``docs/img/dashboard-*.png``.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402 -- after the sys.path change
from playwright.sync_api import sync_playwright  # noqa: E402

from scheduler import Scheduler  # noqa: E402
from scheduler.devserver import DevServer  # noqa: E402
from scheduler.web import WebAuth, create_app  # noqa: E402
from tests.helpers import running  # noqa: E402
from tests.web_helpers import chromium_path, populate, serving  # noqa: E402

OUT = ROOT / "docs" / "img"


def main() -> None:
    browser_path = chromium_path()
    if browser_path is None:
        sys.exit("no Chromium: apt-get install chromium")
    server = DevServer().start()
    try:
        app = Scheduler(redis.Redis.from_url(server.url), prefix="shots")

        @app.task(queue="thumbnails", max_attempts=1)
        def make_thumbnail(n: int) -> int:
            time.sleep(0.01)
            if n % 9 == 0:
                raise ValueError(f"image {n} is corrupt")
            return n

        pop = populate(app)
        web = create_app(app, auth=WebAuth(), refresh=1.0)
        web.state.dashboard.history.min_interval_s = 0.5
        with serving(web) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(base + "/")
            with running(app, queues=["thumbnails"], concurrency=4):
                for second in range(12):
                    for _ in range(random.Random(second).randint(5, 25)):
                        make_thumbnail.enqueue(random.randint(1, 1000))
                    time.sleep(1.0)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(OUT / "dashboard-overview.png"))
            page.goto(f"{base}/queues/emails?state=ready")
            page.screenshot(path=str(OUT / "dashboard-jobs.png"))
            page.goto(f"{base}/queues/emails/jobs/{pop.dead[0]}")
            page.screenshot(path=str(OUT / "dashboard-job.png"))
            page.goto(f"{base}/schedules")
            page.screenshot(path=str(OUT / "dashboard-schedules.png"), clip=None)
            browser.close()
    finally:
        server.stop()
    for png in sorted(OUT.glob("dashboard-*.png")):
        print(png.relative_to(ROOT), png.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
