"""Regenerate the README screenshots: python docs/screenshots.py (after make run has set up .venv).

Serves the demo data on a throwaway SQLite database and photographs the pages with
Debian's Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
PORT = "8765"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp}/shots.sqlite3"}
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
        subprocess.run([*manage, "load_demo"], env=env, check=True, stdout=subprocess.DEVNULL)
        script = (
            "from django.contrib.auth.models import User; User.objects.create_superuser('demo', '', 'demo-pass-123')"
        )
        subprocess.run([*manage, "shell", "-c", script], env=env, check=True)
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{PORT}"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(2)
            shoot(f"http://127.0.0.1:{PORT}")
        finally:
            server.terminate()


def shoot(base: str) -> None:
    out = ROOT / "docs"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        page.goto(base + "/")
        page.fill("input[name=username]", "demo")
        page.fill("input[name=password]", "demo-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.screenshot(path=out / "batch-list.png")
        page.click("text=rr-2025-09-19-jaywalk")
        page.wait_for_selector("article.item")
        page.keyboard.press("j")
        page.keyboard.press("a")  # one decision with the keyboard, so the page shows a decided event
        page.locator("tr.event.is-focused").nth(0).wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=out / "batch-page.png")
        # The event pane: the video at the event, its span on the bar, the video's timeline.
        page.locator("tr.event button.watch").nth(2).click()
        page.wait_for_function("() => window.reviewerPlayer && window.reviewerPlayer.firstFrame")
        page.wait_for_timeout(1200)
        page.screenshot(path=out / "batch-pane.png")
        page.keyboard.press("Escape")
        page.click("text=Review one by one")
        page.wait_for_selector("#card")
        page.wait_for_function("() => window.reviewerPlayer && window.reviewerPlayer.firstFrame")
        page.wait_for_timeout(1200)
        page.screenshot(path=out / "review-mode.png")
        # The provider's extra fields of an event: NomadicML overlay, TwelveLabs custom metadata.
        page.goto(base + "/")
        page.click("text=rr-2025-09-19-jaywalk")
        page.locator("article.item").nth(0).screenshot(path=out / "event-overlay.png")
        page.goto(base + "/")
        page.click("text=68f4ddaf8aaa60d33df0e800")
        page.locator("article.item", has=page.locator(".event-fields .timed")).first.screenshot(
            path=out / "event-metadata.png"
        )
        browser.close()


if __name__ == "__main__":
    main()
