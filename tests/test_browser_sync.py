"""Live progress in a real browser: a batch the provider finishes turns completed on screen, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewer import fetch
from reviewer.models import Batch
from tests.factories import tl_id, tl_line
from tests.fakes import twelvelabs as tl

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INCIDENT = {"incident": [{"start_time": 4, "end_time": 9, "metadata": {"label": "cyclist cut-in", "severity": "high"}}]}


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    # The task runs inside the status request (no worker process in a test), and every
    # poll is due, so the page re-syncs each time it asks.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.AUTO_SYNC_SECONDS = 0


def test_a_processing_batch_turns_completed_on_screen(logged_in_page, live_server, tl_source, twelvelabs_fake):
    page = logged_in_page
    twelvelabs_fake.add_batch(
        tl.TIMED_BATCH, [tl_line(tl_id(1), "processing", custom_id="cam-1"), tl_line(tl_id(2), segments={})],
        status="processing",
    )  # fmt: skip
    fetch.fetch_batch(tl_source, tl.TIMED_BATCH)
    batch = Batch.objects.get()

    page.goto(live_server.url + batch.get_absolute_url())
    status = page.locator("#batch-status .page-head > .badge").first
    assert status.inner_text() == "Processing"
    assert page.locator("text=cyclist cut-in").count() == 0
    assert page.locator("tbody.item", has_text="cam-1").locator("text=Not analysed yet").is_visible()
    page.evaluate("window.notReloaded = true")

    twelvelabs_fake.add_batch(tl.TIMED_BATCH, [tl_line(tl_id(1), segments=INCIDENT, custom_id="cam-1"),
                                               tl_line(tl_id(2), segments={})])  # fmt: skip
    expect(page.locator("#batch-status .page-head > .badge").first).to_have_text("Completed", timeout=15_000)
    # The results list reloads itself when the sync lands.
    page.locator("#results >> text=cyclist cut-in").wait_for(timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#batch-status .tallies").inner_text().count("ready") == 1
    # A finished batch stops polling: no request goes out in the next polling period.
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_timeout(3_500)
    assert not [url for url in requests if "/status" in url]


def test_add_batch_from_the_recent_list(logged_in_page, live_server, tl_source, twelvelabs_fake):
    page = logged_in_page
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    twelvelabs_fake.add_batch(tl.GENERAL_BATCH, tl.general_lines(), mode="general", created_at="2025-10-18T09:00:00Z")

    page.click("text=Add batch")
    page.locator(".recent-batches").wait_for()
    assert page.locator(".recent-batches tbody tr").count() == 2
    page.locator(f"tr:has-text('{tl.TIMED_BATCH}') button").click()

    page.wait_for_url(f"**{Batch.objects.get().get_absolute_url()}")
    assert page.locator("h1").inner_text() == tl.TIMED_BATCH
    assert page.locator("tbody.item").count() == 7
    assert page.locator("text=near miss").count() >= 1


def test_a_wrong_batch_id_is_refused_on_the_form(logged_in_page, live_server, tl_source, twelvelabs_fake):
    page = logged_in_page
    page.goto(live_server.url + "/batches/add/")
    page.fill("input[name=batch_id]", "not-a-batch")
    page.click("text=Fetch batch")
    assert "24 hexadecimal characters" in page.locator(".field.has-error").inner_text()
    assert page.input_value("input[name=batch_id]") == "not-a-batch"  # nothing typed is lost
    assert not Batch.objects.exists()
