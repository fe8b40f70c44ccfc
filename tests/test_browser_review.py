"""Keyboard-only review in a real browser: ten decisions, one undo, then the counters and the CSV agree."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import expect

from reviewer import demo
from reviewer.models import Batch, Decision, Event
from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEYS = ["a", "r", "i", "a", "a", "r", "i", "a", "r", "a"]
APPROVAL_OF_KEY = {"a": "approved", "r": "rejected", "i": "invalid"}


def open_demo_batch(page, live_server, query: str = "") -> Batch:
    """Load the demo data and open the NomadicML ask batch (72 events) in ``page``."""
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    page.goto(live_server.url + batch.get_absolute_url() + query)
    return batch


def focused_event(page) -> int:
    return int(page.evaluate("document.querySelector('tr.event.is-focused').dataset.event"))


def test_ten_keyboard_decisions_one_undo_and_everything_agrees(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server)

    page.keyboard.press("j")  # focus the first event
    decided: list[tuple[int, str]] = []
    for key in KEYS:
        event_id = focused_event(page)
        page.keyboard.press(key)
        page.locator(f"#event-{event_id}[data-approval={APPROVAL_OF_KEY[key]}]").wait_for()
        expect(page.locator("tr.event.is-focused")).not_to_have_attribute("data-event", str(event_id))
        decided.append((event_id, APPROVAL_OF_KEY[key]))
    assert len({event_id for event_id, _ in decided}) == 10  # each decision moved on to the next event

    page.keyboard.press("u")
    page.locator("#toast", has_text="Undone: 1 event restored").wait_for()
    undone_id, _ = decided.pop()
    undone = Event.objects.get(pk=undone_id)
    assert undone.decided_at is None  # back to the provider's value
    page.locator(f"#event-{undone_id}[data-approval={undone.approval}]").wait_for()  # the list reloaded

    for event_id, approval in decided:
        assert Event.objects.get(pk=event_id).approval == approval
    assert Decision.objects.filter(undoes__isnull=True).count() == 10 and Decision.objects.count() == 11

    # The counters on screen are the database's.
    counts = Counter(Event.objects.filter(batch=batch).values_list("approval", flat=True))
    for value in ("pending", "approved", "rejected", "invalid"):
        assert page.locator(f"label.chip-{value} b").inner_text() == str(counts[value])
    # Reviewed means by a person; the provider's own decisions are counted apart.
    events = Event.objects.filter(batch=batch)
    reviewed = events.filter(decided_at__isnull=False).exclude(approval="pending").count()
    by_provider = events.filter(decided_at__isnull=True).exclude(approval="pending").count()
    assert page.locator("#review-progress .progress-label").inner_text() == (
        f"{reviewed} / {sum(counts.values())} reviewed · {by_provider} decided by the provider"
    )

    # And so is the CSV export.
    with page.expect_download() as download:
        page.click("#export-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert Counter(row["Approval Status"] for row in rows) == counts


def test_keys_do_nothing_while_typing_in_the_search_box(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server)
    page.keyboard.press("j")
    page.click("#q")
    page.keyboard.type("ar")  # "a" and "r" are letters of a search here, not decisions
    page.wait_for_timeout(600)
    assert not Decision.objects.exists()
    assert page.input_value("#q") == "ar"


def test_the_key_help_opens_with_a_question_mark(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server)
    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#keys-help").is_visible()


def test_bulk_approve_all_matching_after_a_confirmation_stating_the_count(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server, "?approval=pending")
    pending = Event.objects.filter(batch=batch, approval="pending").count()
    page.click("text=Approve all…")
    dialog = page.locator("#dialog")
    dialog.locator(f"text=Set {pending} events to approved?").wait_for()
    dialog.locator("button[type=submit]").click()
    page.locator("#toast", has_text=f"{pending} events set to approved").wait_for()
    assert not dialog.is_visible()
    assert Event.objects.filter(batch=batch, approval="pending").count() == 0
    page.locator("#results >> text=Nothing matches these filters").wait_for()  # the list reloaded


def test_review_mode_decides_one_event_at_a_time_with_the_keyboard(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server)
    page.click("text=Review one by one")
    first = int(page.locator("#card").get_attribute("data-event"))
    page.keyboard.press("r")
    expect(page.locator("#card")).not_to_have_attribute("data-event", str(first))
    assert Event.objects.get(pk=first).approval == "rejected"
    second = int(page.locator("#card").get_attribute("data-event"))
    assert f"event={second}" in page.url  # the address follows, so a reload stays here
    page.keyboard.press("j")
    expect(page.locator("#card")).not_to_have_attribute("data-event", str(second))


def test_a_decision_on_a_stale_page_is_not_applied_and_says_who_changed_it(logged_in_page, live_server, reviewer_user):
    from reviewer import review

    page = logged_in_page
    open_demo_batch(page, live_server)
    page.keyboard.press("j")
    event = Event.objects.get(pk=focused_event(page))
    review.decide(event, "invalid", reviewer_user)  # rita, in another tab, after alice's page loaded
    page.keyboard.press("r")
    notice = page.locator(f"#event-{event.pk} .stale-notice")
    notice.wait_for()
    assert "rita changed this event to invalid" in notice.inner_text()
    assert Event.objects.get(pk=event.pk).approval == "invalid"
    assert focused_event(page) == event.pk  # the focus stays, to decide again knowingly
    page.keyboard.press("r")
    page.locator(f"#event-{event.pk}[data-approval=rejected]").wait_for()


def test_the_decision_buttons_work_without_javascript(browser, live_server, staff):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server, "alice", "pw-alice")
    open_demo_batch(page, live_server, "?approval=pending")
    row = page.locator("tr.event").first
    event_id = int(row.get_attribute("data-event"))
    row.locator("button.dec-rejected").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"?approval=pending#event-{event_id}")  # back on the same filtered view
    assert "set to rejected" in page.locator(".messages").inner_text()
    assert Event.objects.get(pk=event_id).approval == "rejected"
    context.close()
