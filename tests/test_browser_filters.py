"""Filtering and exporting in a real browser, through htmx."""

from __future__ import annotations

import csv
import io

import pytest

from reviewer import demo
from reviewer.models import Batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_csv_export_has_exactly_the_events_the_page_shows(logged_in_page, live_server):
    page = logged_in_page
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    page.goto(live_server.url + batch.get_absolute_url())

    page.click("label.chip-approved")
    page.wait_for_url("**approval=approved**")
    page.click("label.chip-rejected")
    page.wait_for_url("**approval=rejected**")
    page.click("label.chip-status:has-text('completed')")
    page.wait_for_url("**status=completed**")
    page.locator("#results tr.event").first.wait_for()

    # Every shown event (all on one page at this size), read off the screen.
    assert "Page 1 of" not in page.inner_text("#results")
    shown = page.eval_on_selector_all(
        "#results tr.event",
        "rows => rows.map(r => [r.closest('tbody.item').querySelector('h2').innerText, r.querySelector('.label').innerText,"
        " r.dataset.approval])",
    )
    assert shown and {approval for _, _, approval in shown} == {"approved", "rejected"}

    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    assert download.suggested_filename == f"{demo.NOMADIC_ASK_BATCH}-approved-rejected-completed.csv"
    with open(download.path(), encoding="utf-8") as downloaded:
        rows = list(csv.DictReader(io.StringIO(downloaded.read())))
    assert [[row["Video"], row["Label"] or row["Category"], row["Approval Status"]] for row in rows] == shown

    # The back button restores the previous filter.
    page.go_back()
    page.wait_for_url("**approval=rejected**")
    assert "status=completed" not in page.url
