"""Search in a real browser: from the nav to the results across batches, a chip, and one hit opened in review mode;
then the batch page's own search box, highlighting what matched."""

from __future__ import annotations

import pytest

from reviewer import demo
from reviewer.models import Event
from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_across_batches_then_review_a_hit_then_search_a_batch(browser, live_server, staff):
    demo.load()
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_server, "alice", "pw-alice")

    page.click("nav >> text=Search")
    page.fill("#q", "PIETON")  # no accent, upper case: finds "piéton" in an analysis
    page.keyboard.press("Enter")
    page.wait_for_selector(".search-group")
    assert page.locator("mark", has_text="piéton").count() >= 1

    page.fill("#q", "pedestrian cross")
    page.keyboard.press("Enter")
    page.wait_for_selector(".search-group")
    expected = Event.objects.filter(label__icontains="pedestrian", approval="pending")
    page.check("input[name=approval][value=pending]", force=True)
    page.click("button:has-text('Search')")
    page.wait_for_selector(".result-count")
    shown = page.locator(".search-hits tbody tr")
    assert shown.count() >= 1
    assert all(text.strip() == "Pending" for text in shown.locator(".badge[class*=approval-]").all_inner_texts())
    assert expected.exists()

    # A hit opens in review mode at that very event, with the search kept.
    first = shown.first
    label = first.locator(".label").inner_text()
    first.locator("td.time a").click()
    page.wait_for_url("**/review?**")
    assert "q=pedestrian+cross" in page.url and "event=" in page.url
    assert label.strip() in page.locator("main").inner_text()

    # The batch page's own search highlights the matched words as you type.
    page.go_back()
    page.locator(".search-batch a").first.click()
    page.wait_for_selector("tbody.item")
    assert page.input_value("#q") == "pedestrian cross"
    assert page.locator("tr.event mark").count() >= 2
