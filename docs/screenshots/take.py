"""Screenshots of the batch page, review mode, activity, insights, search, API tokens and a webhook, light and dark, desktop and phone.

    .venv/bin/python docs/screenshots/take.py            # writes docs/screenshots/*.png
    .venv/bin/python docs/screenshots/take.py --out /tmp/shots --all

A throwaway SQLite database in a temporary directory (migrate, the demo batches of
reviewer/demo.py, one user), Django's runserver on a free port of 127.0.0.1 (DEBUG on, so
it serves static/), and Debian's Chromium through Playwright. A few decisions are made
with the keyboard first, so the pages show decided events and an activity log. Nothing
in the working tree is touched but the PNGs.

Each page is photographed three ways: desktop light (1440×900), desktop dark (the
browser asks for prefers-color-scheme: dark) and phone light (390×844); in light also the
batch list, the event pane and an event's overlay and metadata (the README shows them).
--all adds the phone in dark and the other pages (import, add batch, confirm, login).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
USERNAME, PASSWORD = "dana", "screenshots-only-pass-1"
DEMO_BATCH = "rr-2025-09-19-jaywalk"

# (name, viewport, colour scheme)
LOOKS = [
    ("light", {"width": 1440, "height": 900}, "light"),
    ("dark", {"width": 1440, "height": 900}, "dark"),
    ("phone", {"width": 390, "height": 844}, "light"),
]
EXTRA_LOOKS = [("phone-dark", {"width": 390, "height": 844}, "dark")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go (docs/screenshots)")
    parser.add_argument("--all", action="store_true", help="also the phone in dark and the other pages")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp}/shots.sqlite3", "PYTHONPATH": str(ROOT)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v0"], env=env, check=True)
        setup = (
            "from django.contrib.auth.models import User; from reviewer import demo; demo.load(); "
            f"User.objects.create_superuser({USERNAME!r}, '', {PASSWORD!r})"
        )
        subprocess.run([*manage, "shell", "-c", setup], env=env, check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base)
            shoot(base, args.out, everything=args.all)
        finally:
            server.terminate()
            server.wait(timeout=10)


def log_in(page, base: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def decide_a_few(page, base: str) -> str:
    """Keyboard decisions, an undo and a bulk decision with a note on the demo batch; returns its path."""
    page.goto(base + "/")
    page.click(f"text={DEMO_BATCH}")
    page.wait_for_selector("tbody.item")
    path = page.url.removeprefix(base)
    page.keyboard.press("j")
    for key in "aaraiu":
        page.keyboard.press(key)
        page.wait_for_timeout(300)
    page.goto(base + path + "?severity=low&approval=pending")
    page.click("text=Approve all…")
    page.fill("#dialog[open] input[name=note]", "Low severity, checked on the strip")
    page.click("#dialog[open] button[type=submit]")
    page.locator("#toast").filter(has_text="pproved").wait_for()
    return path


def settle(page, ms: int = 400) -> None:
    page.wait_for_load_state("load")
    page.wait_for_timeout(ms)


def wait_for_player(page) -> None:
    page.wait_for_function("() => window.reviewerPlayer && window.reviewerPlayer.firstFrame", timeout=15_000)
    page.wait_for_timeout(600)


def shoot(base: str, out: Path, *, everything: bool) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        log_in(page, base)
        batch_path = decide_a_few(page, base)
        batch_pk = batch_path.strip("/").split("/")[-1]
        cookies = context.cookies()
        context.close()

        looks = LOOKS + (EXTRA_LOOKS if everything else [])
        for look, viewport, scheme in looks:
            context = browser.new_context(viewport=viewport, color_scheme=scheme)
            context.add_cookies(cookies)
            page = context.new_page()
            page.set_default_timeout(15_000)

            page.goto(base + batch_path)
            settle(page)
            page.keyboard.press("j")  # the focused row, as a reviewer sees it while working
            if viewport["width"] < 600:  # a phone shows the events from the first video's name down
                page.evaluate("document.querySelector('tbody.item').scrollIntoView({block: 'start'})")
            page.wait_for_timeout(200)
            page.screenshot(path=out / f"batch-{look}.png")

            page.goto(base + f"/batches/{batch_pk}/review")
            wait_for_player(page)
            page.screenshot(path=out / f"review-{look}.png")

            page.goto(base + f"/batches/{batch_pk}/activity")
            settle(page)
            page.screenshot(path=out / f"activity-{look}.png")

            page.goto(base + f"/batches/{batch_pk}/insights")
            settle(page)
            page.screenshot(path=out / f"insights-{look}.png", full_page=True)

            page.goto(base + "/search/?q=pedestrian+cross")
            settle(page)
            page.screenshot(path=out / f"search-{look}.png", full_page=True)

            page.goto(base + "/account/tokens/")
            page.fill("input[name=name]", f"training pipeline ({look})")
            page.click("text=Create token")
            settle(page)
            page.screenshot(path=out / f"tokens-{look}.png", full_page=True)

            page.goto(base + "/webhooks/")
            page.fill("input[name=url]", f"https://hooks.example.com/reviewer/{look}")
            page.check("input[value='decision.created']")
            page.check("input[value='batch.reviewed']")
            page.click("text=Add webhook")
            page.click("text=Done: go to the webhook")
            page.click("text=Send a test event")
            settle(page)
            page.screenshot(path=out / f"webhook-{look}.png", full_page=True)

            if look == "light" or everything:
                page.goto(base + "/")
                settle(page)
                page.screenshot(path=out / f"list-{look}.png")
                page.goto(base + batch_path)
                settle(page)
                page.locator("tr.event button.watch").nth(2).click()
                wait_for_player(page)
                page.screenshot(path=out / f"pane-{look}.png")
            if look == "light":  # a sample's estimate, after three decisions in its review mode
                page.goto(base + f"/batches/{batch_pk}/insights#sample")
                page.fill("input[name=per_stratum]", "4")
                page.click("text=Draw a sample")
                page.wait_for_url("**/samples/*/")
                sample_url = page.url
                page.click("text=Review the sample")
                page.wait_for_load_state("load")
                for key in "aar":
                    page.keyboard.press(key)
                    page.wait_for_timeout(500)
                page.goto(sample_url)
                settle(page)
                page.screenshot(path=out / "sample-light.png", full_page=True)
            if look == "light":  # the provider's extra fields of an event: overlay, custom metadata
                page.goto(base + batch_path)
                settle(page)
                page.locator("tbody.item").nth(0).screenshot(path=out / "event-overlay.png")
                page.goto(base + "/")
                page.click("text=68f4ddaf8aaa60d33df0e800")
                settle(page)
                page.locator("tbody.item", has=page.locator(".event-fields .timed")).first.screenshot(
                    path=out / "event-metadata.png"
                )
            if everything:
                page.goto(base + "/import/")
                settle(page)
                page.screenshot(path=out / f"import-{look}.png", full_page=True)
                page.goto(base + "/batches/add/")
                settle(page, 800)
                page.screenshot(path=out / f"add-{look}.png", full_page=True)
                page.goto(base + f"/batches/{batch_pk}/decisions/confirm?decision=approved&approval=pending")
                settle(page)
                page.screenshot(path=out / f"confirm-{look}.png")
                context.clear_cookies()
                page.goto(base + "/accounts/login/")
                settle(page)
                page.screenshot(path=out / f"login-{look}.png")
            context.close()
        browser.close()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
