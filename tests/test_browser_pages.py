"""The pages in a real browser: log in, list the batches, open one, page through it."""

from __future__ import annotations

import pytest

from reviewer import demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_logs_in_and_opens_a_batch_page(page, live_server, staff):
    demo.load()
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").is_visible()

    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.locator("table.batches tbody tr").count() == 4

    page.click(f"text={demo.NOMADIC_ASK_BATCH}")
    page.wait_for_selector("tbody.item")
    assert page.locator("h1").inner_text() == demo.NOMADIC_ASK_BATCH
    assert page.locator("tbody.item").count() == 25
    # Thumbnails are real images served from static files.
    assert page.eval_on_selector("tbody.item .item-thumb img", "img => img.complete && img.naturalWidth") > 0

    page.click("a[rel=next]")
    page.wait_for_selector("text=Page 2 of 2")
    assert "page=2" in page.url  # htmx pushed the URL: shareable and the back button works
    assert page.locator("tbody.item").count() == 11


def test_no_page_breaks_the_content_security_policy(logged_in_page, live_server):
    """Every page works without inline scripts or styles: the browser reports no CSP violation."""
    from reviewer.models import Batch

    page = logged_in_page
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    for path in [
        "/", batch.get_absolute_url(), f"{batch.get_absolute_url()}?approval=pending&sort=severity",
        f"/batches/{batch.pk}/review", f"/batches/{batch.pk}/activity", "/import/", "/batches/add/",
        "/admin/", "/admin/reviewer/source/add/", "/admin/reviewer/batch/", f"/admin/reviewer/batch/{batch.pk}/change/",
    ]:  # fmt: skip
        page.goto(live_server.url + path)
        # "load", not "networkidle": review mode streams its video, which may keep the network busy.
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # scripts run after load (the player asks for its video)
    page.goto(live_server.url + batch.get_absolute_url())
    page.keyboard.press("j")
    page.keyboard.press("a")  # an htmx swap with out-of-band parts
    page.locator("#review-progress").wait_for()
    page.click("text=Approve all…")
    page.locator("#dialog[open]").wait_for()
    assert violations == []
