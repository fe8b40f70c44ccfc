"""Daily review flows that broke in the browser: history, undo after a bulk action, clearing filters,
the bulk confirmation's filter, the shown count."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewer import review
from reviewer.models import Event
from tests.test_browser_review import open_demo_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_deciding_never_moves_the_row_and_its_history_is_in_the_pane(logged_in_page, live_server, staff):
    page = logged_in_page
    batch = open_demo_batch(page, live_server)
    event = batch.events.filter(decided_at__isnull=True).order_by("id").first()
    row = page.locator(f"#event-{event.pk}")
    row.locator("td.time").click()
    in_page = "r => { const b = r.getBoundingClientRect(); return [b.top + window.scrollY, b.height]; }"
    box = row.evaluate(in_page)
    columns = [cell.bounding_box()["x"] for cell in row.locator("td").all() if cell.is_visible()]
    page.keyboard.press("r")
    expect(page.locator(f"#event-{event.pk}[data-approval=rejected]")).to_be_visible()
    assert page.locator(f"#event-{event.pk}").evaluate(in_page) == box  # same place, same height: no layout shift
    cells = page.locator(f"#event-{event.pk} td").all()
    assert [cell.bounding_box()["x"] for cell in cells if cell.is_visible()] == columns and len(columns) >= 6
    review.decide(event, "rejected", staff, note="blurry")
    page.locator(f"#event-{event.pk} button.watch").click()
    pane = page.locator("#event-pane")
    page.wait_for_function(f"() => window.reviewerPlayer && String(window.reviewerPlayer.eventId) === '{event.pk}'")
    page.wait_for_load_state("networkidle")  # the pane is drawn once and for all
    pane.locator("summary", has_text="History").click()
    expect(pane.locator("details.history")).to_contain_text("blurry")
    expect(pane.locator(".pane-decision")).to_contain_text("by alice")


def test_undo_stays_after_a_bulk_action_empties_the_filter(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server, "?approval=pending")
    pending = batch.events.filter(approval="pending").count()
    page.click("text=Approve all…")
    page.locator("#dialog[open] button[type=submit]").click()
    expect(page.locator("#results")).to_contain_text("0 items", timeout=10_000)
    page.keyboard.press("u")
    expect(page.locator("#toast")).to_contain_text(f"Undone: {pending} events restored")
    assert Event.objects.filter(batch=batch, approval="pending").count() == pending


def test_clear_filters_beside_the_count_clears_them(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server, "?approval=rejected&q=walker")
    page.locator(".result-count a", has_text="Clear filters").click()
    page.wait_for_url(live_server.url + batch.get_absolute_url())
    expect(page.locator("#q")).to_have_value("")
    assert page.locator("input[name=approval]:checked").count() == 0


def test_the_bulk_confirmation_names_each_filter_value_once(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server, "?approval=pending")
    page.click("text=Approve all…")
    dialog = page.locator("#dialog[open]")
    expect(dialog).to_contain_text("pending")
    assert "pending, pending" not in dialog.inner_text()


def test_the_shown_count_follows_single_decisions(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server, "?approval=pending")
    pending = batch.events.filter(approval="pending").count()
    expect(page.locator("#shown-count")).to_have_text(f"All {pending} shown:")
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.locator("#shown-count")).to_have_text(f"All {pending - 1} shown:")


def test_paging_with_the_keyboard_keeps_the_focus_and_the_top(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server)  # 36 videos: two pages
    page.keyboard.press("j")
    last = page.eval_on_selector_all("#results tr.event", "rows => rows[rows.length - 1].dataset.event")
    while page.evaluate("document.querySelector('tr.event.is-focused').dataset.event") != last:
        page.keyboard.press("j")
    page.keyboard.press("j")  # past the last event of page 1: page 2, its first event
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    first = page.eval_on_selector("#results tr.event", "row => row.dataset.event")
    expect(page.locator("tr.event.is-focused")).to_have_attribute("data-event", first)
    assert page.evaluate("document.querySelector('tr.event.is-focused').getBoundingClientRect().top") < 900
    page.keyboard.press("k")  # before the first: back to page 1, its last event
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    expect(page.locator("tr.event.is-focused")).to_have_attribute("data-event", last)
    page.keyboard.press("n")
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    page.keyboard.press("b")
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")


def test_the_next_page_link_opens_the_page_at_its_top(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server)
    page.locator(".pager a[rel=next]").click()
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    page.wait_for_timeout(300)
    assert page.evaluate("document.getElementById('results').getBoundingClientRect().top") > -5


def test_with_a_selection_the_decision_keys_decide_the_selection(logged_in_page, live_server):
    page = logged_in_page
    batch = open_demo_batch(page, live_server, "?approval=pending")
    chosen = []
    for _ in range(3):
        page.keyboard.press("j")
        chosen.append(int(page.evaluate("document.querySelector('tr.event.is-focused').dataset.event")))
        page.keyboard.press("x")
    expect(page.locator("[data-selection-hint]")).to_be_visible()
    page.keyboard.press("a")
    expect(page.locator("#toast")).to_contain_text("3 events set to approved")
    decided = set(
        Event.objects.filter(batch=batch, approval="approved", decided_at__isnull=False).values_list("pk", flat=True)
    )
    assert decided == set(chosen)  # the three selected, not the focused row alone


def test_u_undoes_at_once_what_was_done_on_this_page_and_asks_about_older_actions(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server, "?approval=pending")
    page.keyboard.press("j")
    focused = page.evaluate("document.querySelector('tr.event.is-focused').dataset.event")
    page.keyboard.press("a")
    page.locator(f"#event-{focused}[data-approval=approved]").wait_for()  # a decision made here...
    page.keyboard.press("u")
    expect(page.locator("#toast")).to_contain_text("Undone: 1 event restored")  # ...is undone without a question
    page.wait_for_timeout(800)  # the results reload after the undo
    page.keyboard.press("j")
    focused = page.evaluate("document.querySelector('tr.event.is-focused').dataset.event")
    page.keyboard.press("r")
    page.locator(f"#event-{focused}[data-approval=rejected]").wait_for()
    page.wait_for_timeout(1100)  # the page's time is in whole seconds
    page.reload()  # a new page: the last action (r) is older than it
    page.keyboard.press("u")
    expect(page.locator("#dialog[open]")).to_contain_text("Undo an earlier action?")
    page.locator("#dialog[open] button[type=submit]").click()
    expect(page.locator("#toast")).to_contain_text("Undone: 1 event restored. It was: rejected 1 event")


def test_without_javascript_a_decision_returns_to_its_row_uncovered(browser, live_server, staff):
    from reviewer import demo
    from reviewer.models import Batch
    from tests.conftest import log_in

    context = browser.new_context(viewport={"width": 1360, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server, "alice", "pw-alice")
        demo.load()
        batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
        page.goto(live_server.url + batch.get_absolute_url())
        row = page.locator("tr.event").nth(12)
        event_id = row.get_attribute("data-event")
        row.locator("button.dec-approved").click()
        page.wait_for_url(f"**#event-{event_id}")
        box = page.locator(f"#event-{event_id}").bounding_box()
        covered = page.evaluate(
            """(id) => { const row = document.getElementById(id).getBoundingClientRect();
                return Array.from(document.querySelectorAll('.bulk-bar, .filters')).some((bar) => {
                  const b = bar.getBoundingClientRect(); return getComputedStyle(bar).position === 'sticky'
                    && b.top < row.bottom && b.bottom > row.top; }); }""",
            f"event-{event_id}",
        )
        assert box is not None and 0 <= box["y"] < 900 and not covered
    finally:
        context.close()


def test_a_viewer_sees_no_actions_and_a_403_page_that_says_why(page, live_server, viewer):
    from tests.conftest import log_in

    log_in(page, live_server, "victor", "pw-victor")
    assert page.locator(".topnav a", has_text="Import").count() == 0
    assert page.locator("a", has_text="Add batch").count() == 0
    response = page.goto(live_server.url + "/import/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("You can't do that here")
    expect(page.locator(".topbar")).to_be_visible()  # in the site's layout, with a way back
    expect(page.locator("a", has_text="Back to the batches")).to_be_visible()


def test_review_mode_shows_names_as_they_are_and_reviewed_by_names_everyone(logged_in_page, live_server, staff):
    from reviewer import demo
    from reviewer.models import Batch

    page = logged_in_page
    demo.load()
    batch = Batch.objects.get(provider_batch_id=demo.NOMADIC_ASK_BATCH)
    page.goto(live_server.url + f"/batches/{batch.pk}/review")
    name = page.locator(".review-text h3", has_text="sf-market-st-")
    expect(name).to_be_visible()
    assert name.evaluate("h => getComputedStyle(h).textTransform") == "none"  # shown as the file is named
    for event in batch.events.filter(decided_at__isnull=True):  # reviewed = every event decided by a person
        review.decide(event, "approved", staff)
    page.goto(live_server.url + "/")
    expect(page.locator("table.batches")).to_contain_text(f"by alice ({batch.events.count()})")


def test_the_focused_row_stays_in_the_middle_third_of_the_window(logged_in_page, live_server):
    page = logged_in_page
    open_demo_batch(page, live_server)
    middle = (
        "() => { const r = document.querySelector('tr.event.is-focused').getBoundingClientRect();"
        " const c = (r.top + r.bottom) / 2; return c >= innerHeight / 3 - 1 && c <= 2 * innerHeight / 3 + 1; }"
    )
    page.keyboard.press("j")
    for _ in range(12):
        page.keyboard.press("j")
        assert page.evaluate(middle), "the focused row left the middle third going down"
    for _ in range(6):
        page.keyboard.press("k")
        assert page.evaluate(middle), "the focused row left the middle third going up"
    bar = page.locator(".bulk-bar").bounding_box()
    row = page.locator("tr.event.is-focused").bounding_box()
    assert row["y"] + row["height"] <= bar["y"]  # never under the sticky bar


def test_c_decides_with_a_reason_and_a_note_in_a_dialog(logged_in_page, live_server):
    from reviewer.models import ReasonCode

    ReasonCode.objects.get_or_create(label="Duplicate")  # a transactional test before may have flushed the defaults
    page = logged_in_page
    open_demo_batch(page, live_server, "?approval=pending")
    page.evaluate("window.notReloaded = true")
    page.keyboard.press("j")
    focused = page.locator("tr.event.is-focused").get_attribute("data-event")
    page.keyboard.press("c")
    dialog = page.locator("#dialog[open] .note-form")
    dialog.wait_for()
    dialog.locator("input[value=rejected]").check()
    dialog.locator("select[name=decision_reason]").select_option("Duplicate")
    dialog.locator("textarea[name=note]").fill("Same crossing as the one before")
    dialog.locator("button[type=submit]").click()
    row = page.locator(f"#event-{focused}[data-approval=rejected]")
    expect(row).to_be_visible()
    expect(page.locator("#dialog[open]")).to_have_count(0)
    expect(row.locator(".mark-note")).to_have_count(1)
    assert "Duplicate" in row.locator(".approval-cell").get_attribute("title")
    expect(page.locator("tr.event.is-focused")).to_have_attribute("data-event", focused)  # the focus stays
    assert page.evaluate("window.notReloaded") is True
    saved = Event.objects.get(pk=focused)
    assert (saved.approval, saved.reason, saved.note) == ("rejected", "Duplicate", "Same crossing as the one before")
